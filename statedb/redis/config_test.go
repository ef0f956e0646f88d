package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/integration/testenv"
	redisstore "github.com/eddy-streams/eddy/statedb/redis"
)

func TestConfigValidate(t *testing.T) {
	ok := redisstore.Config{Addrs: []string{"127.0.0.1:6379"}, KeyPrefix: "eddy:p:"}
	tests := []struct {
		name    string
		edit    func(c *redisstore.Config)
		wantErr string // substring naming the field; "" means valid
	}{
		{"standalone", func(c *redisstore.Config) {}, ""},
		{"standalone with DB", func(c *redisstore.Config) { c.DB = 3 }, ""},
		{"cluster seeds", func(c *redisstore.Config) { c.Addrs = []string{"a:1", "b:2", "c:3"} }, ""},
		{"sentinel", func(c *redisstore.Config) {
			c.Addrs = []string{"s1:26379", "s2:26379"}
			c.MasterName = "mymaster"
			c.DB = 2
		}, ""},
		{"no address", func(c *redisstore.Config) { c.Addrs = nil }, "Config.Addrs"},
		{"address without port", func(c *redisstore.Config) { c.Addrs = []string{"a:1", "localhost"} }, "Config.Addrs[1]"},
		{"address with empty host", func(c *redisstore.Config) { c.Addrs = []string{":6379"} }, "Config.Addrs[0]"},
		{"cluster and sentinel", func(c *redisstore.Config) { c.MasterName = "m"; c.Cluster = true }, "Config.Cluster"},
		{"negative DB", func(c *redisstore.Config) { c.DB = -1 }, "Config.DB"},
		{"DB on cluster", func(c *redisstore.Config) { c.Cluster = true; c.DB = 1 }, "Config.DB"},
		{"DB on cluster seeds", func(c *redisstore.Config) { c.Addrs = []string{"a:1", "b:2"}; c.DB = 1 }, "Config.DB"},
		{"no prefix", func(c *redisstore.Config) { c.KeyPrefix = "" }, "Config.KeyPrefix"},
		{"prefix with open brace", func(c *redisstore.Config) { c.KeyPrefix = "eddy{x" }, "Config.KeyPrefix"},
		{"prefix with close brace", func(c *redisstore.Config) { c.KeyPrefix = "eddy}" }, "Config.KeyPrefix"},
		{"negative pool", func(c *redisstore.Config) { c.PoolSize = -1 }, "Config.PoolSize"},
		{"negative timeout", func(c *redisstore.Config) { c.ReadTimeout = -time.Second }, "Config.ReadTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Addrs = append([]string(nil), ok.Addrs...)
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate: nil, want an error naming %s", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate: %q does not name %s", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				// New refuses the same config before any I/O.
				if _, nerr := redisstore.New(t.Context(), c); nerr == nil || nerr.Error() != err.Error() {
					t.Errorf("New: %v, want %v", nerr, err)
				}
			}
		})
	}
}

func TestConfigSecretsNotInErrors(t *testing.T) {
	c := redisstore.Config{Addrs: []string{"localhost"}, KeyPrefix: "p:", Password: "hunter2-secret", SentinelPassword: "s3cret-sentinel"}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted an address without port")
	}
	for _, secret := range []string{c.Password, c.SentinelPassword} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q reveals a password", err)
		}
	}
}

func TestNewUnreachable(t *testing.T) {
	addr := testenv.FreeAddr(t) // nothing listens there
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := redisstore.New(ctx, redisstore.Config{Addrs: []string{addr}, KeyPrefix: "p:", Password: "hunter2-secret", DialTimeout: time.Second})
	if err == nil {
		t.Fatalf("New against %s, where nothing listens, succeeded", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("error %q reveals the password", err)
	}
}

func TestNewAuth(t *testing.T) {
	srv := startServer(t, "--requirepass", "s3cret")
	ctx := t.Context()
	if _, err := redisstore.New(ctx, redisstore.Config{Addrs: []string{srv.addr}, KeyPrefix: "p:", Password: "wrong"}); err == nil {
		t.Error("New with a wrong password succeeded")
	}
	st, err := redisstore.New(ctx, redisstore.Config{Addrs: []string{srv.addr}, KeyPrefix: "p:", Password: "s3cret"})
	if err != nil {
		t.Fatalf("New with the right password: %v", err)
	}
	defer func() { _ = st.Close() }()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestNewFromClientValidates(t *testing.T) {
	o := sharedOpener(t)
	for _, prefix := range []string{"", "a{b", "}"} {
		if _, err := redisstore.NewFromClient(o.client, prefix); err == nil || !strings.Contains(err.Error(), "keyPrefix") {
			t.Errorf("NewFromClient(prefix %q): %v, want an error naming keyPrefix", prefix, err)
		}
	}
	if _, err := redisstore.NewFromClient(nil, "p:"); err == nil {
		t.Error("NewFromClient(nil client) succeeded")
	}
	// A store from NewFromClient leaves the caller's client open.
	st, err := redisstore.NewFromClient(o.client, o.prefix(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.client.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("the caller's client after Store.Close: %v", err)
	}
}
