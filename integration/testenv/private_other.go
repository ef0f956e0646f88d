//go:build !linux

package testenv

import "syscall"

// procAttr sets nothing outside Linux: there a test binary that dies
// leaves its private servers running until t.Cleanup would have killed
// them (that is, forever; kill them by hand).
func procAttr() *syscall.SysProcAttr { return nil }
