package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Config says how to reach Redis and which namespace to use. The zero
// value is not valid: Addrs and KeyPrefix are required.
//
// The topology follows go-redis's UniversalClient: with MasterName set,
// Addrs are Sentinels and the store talks to that master; else with more
// than one address, or Cluster set, Addrs seed a Redis Cluster; else Addrs
// is one standalone server.
//
// Secrets (Password, SentinelPassword) are never logged or put in errors.
type Config struct {
	// Addrs are host:port addresses: one server, Cluster seed nodes, or
	// Sentinels (with MasterName).
	Addrs []string
	// MasterName is the Sentinel master set to use; it makes Addrs
	// Sentinels.
	MasterName string
	// Cluster forces Redis Cluster with a single seed address (a managed
	// cluster's configuration endpoint, for example).
	Cluster bool

	// Username and Password authenticate to Redis (ACL user, or the
	// requirepass password with an empty Username).
	Username string
	Password string
	// SentinelUsername and SentinelPassword authenticate to Sentinels.
	SentinelUsername string
	SentinelPassword string

	// DB is the database number; it must be 0 with Cluster.
	DB int
	// TLS, when set, makes every connection TLS with this configuration.
	TLS *tls.Config

	// KeyPrefix is the namespace: every key of the store starts with it,
	// and two stores with different prefixes share nothing. Use one per
	// pipeline, e.g. "eddy:orders-by-customer:". It must not contain a
	// brace ('{' or '}'), which would change the hash tag. Keep it free of
	// glob characters (*?[]\) if you want to SCAN for it.
	KeyPrefix string

	// PoolSize is the number of connections per node (go-redis default:
	// 10 per CPU). The runtime uses one connection per busy partition.
	PoolSize int
	// DialTimeout, ReadTimeout and WriteTimeout are go-redis's (defaults
	// 5 s, 3 s, 3 s). A commit is one script call, so ReadTimeout bounds
	// the time the largest commit may take on the server.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration

	// MaxRetries and DialerRetries are how often go-redis retries a failed
	// command and how many dial attempts it makes before it reports the
	// error (default 1 each; MaxRetries -1: no retry). eddy's runtime retries failed store calls itself,
	// pausing the partition, so more retries here only delay noticing an
	// outage (go-redis's own defaults, 3 and 5, took ~1.7 s per call
	// against a dead server). Retrying a commit is safe: it is idempotent
	// while the epoch holds.
	MaxRetries    int
	DialerRetries int
}

// clusterMode reports whether c describes a Redis Cluster.
func (c *Config) clusterMode() bool {
	return c.MasterName == "" && (c.Cluster || len(c.Addrs) > 1)
}

// Validate reports the first invalid field of c, by name.
func (c *Config) Validate() error {
	if len(c.Addrs) == 0 {
		return errors.New("redis: Config.Addrs: at least one address is required")
	}
	for i, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("redis: Config.Addrs[%d] %q: want host:port: %w", i, a, err)
		}
		if host == "" || port == "" {
			return fmt.Errorf("redis: Config.Addrs[%d] %q: want host:port with both parts", i, a)
		}
	}
	if c.MasterName != "" && c.Cluster {
		return errors.New("redis: Config.Cluster: cannot be combined with Config.MasterName (Sentinel)")
	}
	if c.DB < 0 {
		return fmt.Errorf("redis: Config.DB: %d is negative", c.DB)
	}
	if c.DB != 0 && c.clusterMode() {
		return fmt.Errorf("redis: Config.DB: must be 0 with Redis Cluster, got %d", c.DB)
	}
	if err := validatePrefix(c.KeyPrefix); err != nil {
		return fmt.Errorf("redis: Config.KeyPrefix: %w", err)
	}
	if c.PoolSize < 0 {
		return fmt.Errorf("redis: Config.PoolSize: %d is negative", c.PoolSize)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("redis: Config.%s: %v is negative", d.name, d.v)
		}
	}
	return nil
}

func validatePrefix(p string) error {
	if p == "" {
		return errors.New("required: one namespace per pipeline, e.g. \"eddy:<pipeline>:\"")
	}
	if strings.ContainsAny(p, "{}") {
		return fmt.Errorf("%q contains a brace, which would change the keys' hash tag", p)
	}
	return nil
}

// New connects to Redis as cfg says, checks that it answers and loads the
// store's scripts, and returns a Store that owns the connection (Close
// closes it). ctx bounds the connection check only.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:            cfg.Addrs,
		MasterName:       cfg.MasterName,
		IsClusterMode:    cfg.Cluster,
		Username:         cfg.Username,
		Password:         cfg.Password,
		SentinelUsername: cfg.SentinelUsername,
		SentinelPassword: cfg.SentinelPassword,
		DB:               cfg.DB,
		TLSConfig:        cfg.TLS,
		PoolSize:         cfg.PoolSize,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		WriteTimeout:     cfg.WriteTimeout,
		MaxRetries:       orDefault(cfg.MaxRetries, 1),
		DialerRetries:    orDefault(cfg.DialerRetries, 1),
	})
	s := newStore(client, cfg.KeyPrefix, true)
	if err := s.load(ctx); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: connect to %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	return s, nil
}

// NewFromClient returns a Store over an existing go-redis client (a
// *redis.Client, *redis.ClusterClient or Sentinel failover client) and key
// prefix (see Config.KeyPrefix). It does no I/O: the scripts are loaded by
// their first call. The caller keeps ownership of client: Close does not
// close it.
func NewFromClient(client goredis.UniversalClient, keyPrefix string) (*Store, error) {
	if client == nil {
		return nil, errors.New("redis: NewFromClient: client is nil")
	}
	if err := validatePrefix(keyPrefix); err != nil {
		return nil, fmt.Errorf("redis: NewFromClient: keyPrefix: %w", err)
	}
	return newStore(client, keyPrefix, false), nil
}

// orDefault maps 0 to def; other values go to go-redis as they are.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
