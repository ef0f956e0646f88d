package dimension

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/internal/clientlog"
)

// SQLConfig says where a MySQL/MariaDB/SingleStore table is.
type SQLConfig struct {
	DSN       string // go-sql-driver/mysql DSN; its password is never printed
	TLS       *tls.Config
	Table     string // the table (or view), optionally db.table
	KeyColumn string // the column a lookup key matches
	// Log receives the driver's own messages (nil: none).
	Log *zap.Logger
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)

// SQL is a Source over a table the user keeps.
type SQL struct {
	db    *sql.DB
	query string // SELECT * FROM <table> WHERE <key> IN (
	key   string
}

// NewSQL opens the database and checks that the table and its key column
// answer.
func NewSQL(ctx context.Context, cfg SQLConfig) (*SQL, error) {
	if !identRe.MatchString(cfg.Table) {
		return nil, fmt.Errorf("dimension: sql: table %q is not a plain identifier", cfg.Table)
	}
	if !identRe.MatchString(cfg.KeyColumn) || strings.Contains(cfg.KeyColumn, ".") {
		return nil, fmt.Errorf("dimension: sql: key column %q is not a plain identifier", cfg.KeyColumn)
	}
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, errors.New("dimension: sql: the DSN is not valid (not shown)")
	}
	mc.ParseTime = true
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	mc.Logger = clientlog.MySQL(log)
	if cfg.TLS != nil {
		if err := mysql.RegisterTLSConfig("eddy-dimension", cfg.TLS); err != nil {
			return nil, fmt.Errorf("dimension: sql: tls: %w", err)
		}
		mc.TLSConfig = "eddy-dimension"
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, errors.New("dimension: sql: the DSN is not valid (not shown)")
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	quote := func(id string) string {
		parts := strings.Split(id, ".")
		for i, p := range parts {
			parts[i] = "`" + p + "`"
		}
		return strings.Join(parts, ".")
	}
	s := &SQL{db: db, key: cfg.KeyColumn,
		query: fmt.Sprintf("SELECT * FROM %s WHERE %s IN (", quote(cfg.Table), quote(cfg.KeyColumn))}
	if _, err := s.Get(ctx, []string{""}); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Get reads the keys' rows with one SELECT.
func (s *SQL) Get(ctx context.Context, keys []string) (map[string]map[string]any, error) {
	if len(keys) == 0 {
		return map[string]map[string]any{}, nil
	}
	var q strings.Builder
	q.WriteString(s.query)
	args := make([]any, len(keys))
	for i, k := range keys {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('?')
		args[i] = k
	}
	q.WriteByte(')')
	rows, err := s.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("dimension: sql: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("dimension: sql: %w", err)
	}
	keyAt := -1
	for i, c := range cols {
		if strings.EqualFold(c, s.key) {
			keyAt = i
		}
	}
	if keyAt < 0 {
		return nil, fmt.Errorf("dimension: sql: the result has no column %s", s.key)
	}
	out := make(map[string]map[string]any, len(keys))
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("dimension: sql: %w", err)
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			row[c] = plain(vals[i])
		}
		out[fmt.Sprint(row[cols[keyAt]])] = row
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dimension: sql: %w", err)
	}
	return out, nil
}

// plain turns a driver value into what CEL and JSON take.
func plain(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

// Close closes the database.
func (s *SQL) Close() error { return s.db.Close() }
