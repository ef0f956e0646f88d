// Package clientlog sends the client libraries' own log lines (go-redis
// and go-sql-driver/mysql write plain text to stderr by default) through
// the worker's zap logger: JSON like every other line, at warn level;
// go-redis's rate-limited per message so that an outage is reported, not
// once per retry.
package clientlog

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Every is how often one kind of message (its format) is logged at most;
// the ones dropped in between are counted in the next line.
const Every = 10 * time.Second

// Limited logs a library's messages to log, each format at most once per
// Every, with the count of the ones left out since.
type Limited struct {
	log *zap.Logger
	now func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
	left map[string]int
}

// New returns a Limited logger writing to log.
func New(log *zap.Logger) *Limited {
	return &Limited{log: log, now: time.Now, last: map[string]time.Time{}, left: map[string]int{}}
}

// Printf implements go-redis's logging interface.
func (l *Limited) Printf(_ context.Context, format string, v ...any) {
	now := l.now()
	l.mu.Lock()
	if t, ok := l.last[format]; ok && now.Sub(t) < Every {
		l.left[format]++
		l.mu.Unlock()
		return
	}
	l.last[format] = now
	skipped := l.left[format]
	delete(l.left, format)
	l.mu.Unlock()
	fields := []zap.Field{zap.String("message", strings.TrimSpace(fmt.Sprintf(format, v...)))}
	if skipped > 0 {
		fields = append(fields, zap.Int("similar_left_out", skipped))
	}
	l.log.Warn("client library", fields...)
}

// MySQL is a go-sql-driver/mysql logger (mysql.Config.Logger) writing its
// messages to log at warn level: the driver logs per connection, so each
// user of the driver passes its own.
func MySQL(log *zap.Logger) MySQLLogger { return MySQLLogger{log} }

// MySQLLogger implements go-sql-driver/mysql's Logger over zap.
type MySQLLogger struct{ log *zap.Logger }

// Print implements mysql.Logger.
func (l MySQLLogger) Print(v ...any) {
	l.log.Warn("mysql driver", zap.String("message", strings.TrimSpace(fmt.Sprint(v...))))
}

// InstallRedis makes go-redis log through log (it has one logger for the
// whole process).
func InstallRedis(log *zap.Logger) { goredis.SetLogger(New(log.Named("redis"))) }
