package dimension

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/pipeline"
)

// RedisConfig says where a Redis table is and how its rows are stored.
type RedisConfig struct {
	Addrs              []string
	Username, Password string
	DB                 int
	MasterName         string
	TLS                *tls.Config
	// KeyPrefix: the row of key k is at KeyPrefix + k.
	KeyPrefix string
	// JSON: each row is a string holding a JSON object (GET); otherwise a
	// hash whose fields are the row's (HGETALL), with values that look like
	// integers or decimals read as numbers.
	JSON bool
}

// Redis is a Source over a Redis (or Redis Cluster) the user keeps.
type Redis struct {
	client goredis.UniversalClient
	cfg    RedisConfig
}

// NewRedis connects as cfg says and checks that the server answers.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("dimension: redis: no addresses")
	}
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs: cfg.Addrs, MasterName: cfg.MasterName, Username: cfg.Username, Password: cfg.Password,
		DB: cfg.DB, TLSConfig: cfg.TLS, MaxRetries: 1,
	})
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("dimension: redis %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	return &Redis{client: client, cfg: cfg}, nil
}

// Get reads the keys' rows in one pipeline (go-redis splits it by node on
// a Cluster).
func (r *Redis) Get(ctx context.Context, keys []string) (map[string]map[string]any, error) {
	pipe := r.client.Pipeline()
	hashes := make([]*goredis.MapStringStringCmd, len(keys))
	strs := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		if r.cfg.JSON {
			strs[i] = pipe.Get(ctx, r.cfg.KeyPrefix+k)
		} else {
			hashes[i] = pipe.HGetAll(ctx, r.cfg.KeyPrefix+k)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("dimension: redis: %w", err)
	}
	out := make(map[string]map[string]any, len(keys))
	for i, k := range keys {
		if r.cfg.JSON {
			s, err := strs[i].Result()
			if errors.Is(err, goredis.Nil) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("dimension: redis: GET %s: %w", r.cfg.KeyPrefix+k, err)
			}
			row, err := pipeline.DecodeJSON([]byte(s))
			if err != nil {
				return nil, fmt.Errorf("dimension: redis: the row at %s is not a JSON object: %w", r.cfg.KeyPrefix+k, err)
			}
			out[k] = row
			continue
		}
		h, err := hashes[i].Result()
		if err != nil {
			return nil, fmt.Errorf("dimension: redis: HGETALL %s: %w", r.cfg.KeyPrefix+k, err)
		}
		if len(h) == 0 {
			continue // no such hash
		}
		row := make(map[string]any, len(h))
		for f, v := range h {
			row[f] = number(v)
		}
		out[k] = row
	}
	return out, nil
}

// number reads a hash field: an integer or decimal as a number, anything
// else as the string it is.
func number(v string) any {
	if i, err := strconv.ParseInt(v, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, ".eE") && !strings.ContainsAny(v, "nN") {
		return f
	}
	return v
}

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }
