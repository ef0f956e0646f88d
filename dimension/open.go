package dimension

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/internal/tlsconf"
	"github.com/eddy-streams/eddy/pipeline"
)

// Open connects every table of p that the user keeps in Redis or SQL,
// each behind its cache (tables[].cache), by table name. On error it
// closes what it opened. The caller closes the sources.
func Open(ctx context.Context, p *pipeline.Pipeline, log *zap.Logger) (map[string]*Cache, error) {
	if log == nil {
		log = zap.NewNop()
	}
	out := map[string]*Cache{}
	closeAll := func() {
		for _, c := range out {
			_ = c.Close()
		}
	}
	for i, tb := range p.Tables {
		t := tb.External
		if t == nil {
			continue
		}
		path := fmt.Sprintf("tables[%d]", i)
		var src Source
		switch {
		case t.Redis != nil:
			r := t.Redis
			tc, err := tlsconf.Build(path+".redis.tls", r.TLS)
			if err != nil {
				closeAll()
				return nil, err
			}
			s, err := NewRedis(ctx, RedisConfig{Addrs: r.Addrs, Username: r.Username, Password: r.Password, DB: r.DB,
				MasterName: r.MasterName, TLS: tc, KeyPrefix: r.KeyPrefix, JSON: r.Type == "json"})
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			src = s
		case t.SQL != nil:
			q := t.SQL
			tc, err := tlsconf.Build(path+".sql.tls", q.TLS)
			if err != nil {
				closeAll()
				return nil, err
			}
			s, err := NewSQL(ctx, SQLConfig{DSN: q.DSN, TLS: tc, Table: q.Table, KeyColumn: q.KeyColumn, Log: log.Named(path)})
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			src = s
		}
		out[tb.Name] = Cached(src, t.Cache.Size, t.Cache.TTL)
	}
	return out, nil
}
