// Package zaplog makes eddy's loggers: the JSON lines of worker run, which
// are also what a processor.Worker given no logger writes to stderr, and
// the console lines of worker dev. One place, so that the binary and the
// library log alike.
package zaplog

import (
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// JSON logs lvl and above to w, one JSON object per line: zap's production
// encoding (ts, level, msg, fields) with ISO 8601 times.
func JSON(w io.Writer, lvl zapcore.Level) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	return build(zapcore.NewJSONEncoder(ec), w, lvl)
}

// Console logs lvl and above to w for a person: the time of day, no
// caller, and levels in colour when color is set (a terminal, NO_COLOR
// unset: the caller knows).
func Console(w io.Writer, lvl zapcore.Level, color bool) *zap.Logger {
	ec := zap.NewDevelopmentEncoderConfig()
	ec.EncodeLevel = zapcore.CapitalLevelEncoder
	if color {
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	ec.EncodeCaller = nil
	return build(zapcore.NewConsoleEncoder(ec), w, lvl)
}

func build(enc zapcore.Encoder, w io.Writer, lvl zapcore.Level) *zap.Logger {
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	// Sample repeated messages (a poison-event storm) after the first 100 a second.
	core = zapcore.NewSamplerWithOptions(core, time.Second, 100, 100)
	return zap.New(core)
}
