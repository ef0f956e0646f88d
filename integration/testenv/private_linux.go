package testenv

import "syscall"

// procAttr makes the kernel kill a private server when the test binary
// dies (Pdeathsig), so that a crashed or timed-out test leaves no server
// behind. Go ends an OS thread only when a goroutine locked to it exits,
// which nothing in the tests does, so the signal comes with the process's
// end, not earlier.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
