// Package backends opens the state store a pipeline file selects
// (state.backend: memory, redis or singlestore), so that the worker binary
// and Go programs that embed the runtime configure stores the same way.
package backends

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/eddy-streams/eddy/internal/tlsconf"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/memory"
	"github.com/eddy-streams/eddy/statedb/redis"
	"github.com/eddy-streams/eddy/statedb/singlestore"
)

// Open connects the backend the pipeline's state section selects,
// namespaced by the pipeline's name so that pipelines never share state:
// Redis keys start with state.redis.key_prefix (default "eddy:") plus
// "<name>:"; SingleStore tables with "eddy_<name>_" (see SQLNamespace).
// log may be nil. The caller closes the store.
func Open(ctx context.Context, p *pipeline.Pipeline, log *zap.Logger) (statedb.Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	st := p.Spec.State
	switch st.Backend {
	case pipeline.BackendRedis:
		c := st.Redis
		tc, err := tlsconf.Build("state.redis.tls", c.TLS)
		if err != nil {
			return nil, err
		}
		prefix := c.KeyPrefix
		if prefix == "" {
			prefix = "eddy:"
		}
		s, err := redis.New(ctx, redis.Config{
			Addrs: c.Addrs, MasterName: c.MasterName, Username: c.Username, Password: c.Password,
			DB: c.DB, TLS: tc, KeyPrefix: prefix + p.Spec.Name + ":",
		})
		if err != nil {
			return nil, fmt.Errorf("state.redis: %w", err)
		}
		return s, nil
	case pipeline.BackendSingleStore:
		c := st.SingleStore
		tc, err := tlsconf.Build("state.singlestore.tls", c.TLS)
		if err != nil {
			return nil, err
		}
		s, err := singlestore.New(ctx, singlestore.Config{
			DSN: c.DSN, Dialect: string(c.Dialect), TLS: tc, WaitTimeout: c.WaitTimeout,
			Namespace: SQLNamespace(p.Spec.Name), Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("state.singlestore: %w", err)
		}
		return s, nil
	default:
		log.Warn("state.backend is memory: state lives in this process only and is lost when it stops; use redis or singlestore to share it between workers")
		return memory.New(), nil
	}
}

// SQLNamespace turns a pipeline name into a table prefix: letters, digits
// and '_' only, at most 48 characters (long names end in a hash, so two
// long names never collide).
func SQLNamespace(name string) string {
	ns := "eddy_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
	if len(ns) > 48 {
		sum := sha256.Sum256([]byte(name))
		ns = ns[:39] + "_" + hex.EncodeToString(sum[:4])
	}
	return ns
}
