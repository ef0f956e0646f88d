//go:build !chaos

package main

import (
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/processor"
)

// chaosOptions adds nothing outside the chaos test's build (see
// chaos_hook.go).
func chaosOptions(*zap.Logger) []processor.Option { return nil }
