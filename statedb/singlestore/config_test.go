package singlestore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/eddy-streams/eddy/integration/testenv"
)

func TestConfigValidation(t *testing.T) {
	const dsn = "u:p@tcp(127.0.0.1:1)/db"
	tests := []struct {
		name   string
		cfg    Config
		fromDB bool
		want   string // substring of the error, naming the field
	}{
		{"empty DSN", Config{}, false, "Config.DSN is empty"},
		{"unknown dialect", Config{DSN: dsn, Dialect: "postgres"}, false, `Config.Dialect "postgres"`},
		{"dialect is case-sensitive", Config{DSN: dsn, Dialect: "SingleStore"}, false, "Config.Dialect"},
		{"namespace with a dash", Config{DSN: dsn, Namespace: "my-pipeline"}, false, `Config.Namespace "my-pipeline": character '-' at 2`},
		{"namespace with a backtick", Config{DSN: dsn, Namespace: "a`b"}, false, "Config.Namespace"},
		{"namespace too long", Config{DSN: dsn, Namespace: strings.Repeat("n", 49)}, false, "more than 48"},
		{"negative MaxOpenConns", Config{DSN: dsn, MaxOpenConns: -1}, false, "Config.MaxOpenConns -1"},
		{"negative SweepBatch", Config{DSN: dsn, SweepBatch: -5}, false, "Config.SweepBatch -5"},
		{"WaitTimeout not in seconds", Config{DSN: dsn, WaitTimeout: 1500 * time.Millisecond}, false, "Config.WaitTimeout 1.5s is not a whole number of seconds"},
		{"WaitTimeout too long", Config{DSN: dsn, WaitTimeout: 400 * 24 * time.Hour}, false, "Config.WaitTimeout 9600h0m0s is more than a year"},
		{"DSN with NewFromDB", Config{DSN: dsn}, true, "Config.DSN must be empty"},
		{"TLS with NewFromDB", Config{TLS: &tls.Config{}}, true, "Config.TLS must be nil"},
		{"MaxOpenConns with NewFromDB", Config{MaxOpenConns: 3}, true, "Config.MaxOpenConns must be 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults(tt.fromDB)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		c, err := Config{DSN: dsn}.withDefaults(false)
		if err != nil {
			t.Fatal(err)
		}
		if c.Dialect != DialectMySQL || c.Namespace != DefaultNamespace || c.MaxOpenConns != DefaultMaxOpenConns ||
			c.SweepInterval != DefaultSweepInterval || c.SweepBatch != DefaultSweepBatch || c.WaitTimeout != DefaultWaitTimeout || c.Logger == nil {
			t.Errorf("defaults = %v", c)
		}
		if c, _ := (Config{DSN: dsn, WaitTimeout: -1}).withDefaults(false); c.WaitTimeout != -1 {
			t.Errorf("negative WaitTimeout became %v, want kept (server's setting)", c.WaitTimeout)
		}
		if c, _ := (Config{DSN: dsn, SweepInterval: -1}).withDefaults(false); c.SweepInterval != -1 {
			t.Errorf("negative SweepInterval became %v, want kept (sweep off)", c.SweepInterval)
		}
	})
}

func TestDriverConfigForcesParameters(t *testing.T) {
	own := &tls.Config{ServerName: "db.example", MinVersion: tls.VersionTLS13}
	c, err := Config{
		DSN: "u:p@tcp(db.example:3306)/eddy?clientFoundRows=false&parseTime=false&interpolateParams=false&tls=false",
		TLS: own,
	}.withDefaults(false)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := c.driverConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !mc.ClientFoundRows || !mc.ParseTime || !mc.InterpolateParams || !mc.CheckConnLiveness {
		t.Errorf("driver config: clientFoundRows %v parseTime %v interpolateParams %v checkConnLiveness %v, want all true",
			mc.ClientFoundRows, mc.ParseTime, mc.InterpolateParams, mc.CheckConnLiveness)
	}
	if mc.TLS == nil || mc.TLS == own || mc.TLS.ServerName != "db.example" || mc.TLS.MinVersion != tls.VersionTLS13 {
		t.Errorf("driver TLS config = %+v, want a clone of Config.TLS", mc.TLS)
	}
	if mc.TLSConfig != "false" {
		t.Logf("tls param: %q", mc.TLSConfig)
	}
	if mc.DBName != "eddy" || mc.User != "u" || mc.Passwd != "p" {
		t.Errorf("driver config lost the DSN's fields: %+v", mc)
	}
}

// TestTLSIsUsed connects with Config.TLS to the test server, which speaks
// no TLS: the connection must fail with the driver's "server does not
// support TLS" rather than fall back to plaintext.
func TestTLSIsUsed(t *testing.T) {
	dsn := freshDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := New(ctx, Config{DSN: dsn, TLS: &tls.Config{InsecureSkipVerify: true}, SweepInterval: -1})
	if err == nil {
		// The server does speak TLS: then the session must be encrypted.
		defer func() { _ = s.Close() }()
		var name, cipher string
		if err := s.db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
			t.Fatal(err)
		}
		if cipher == "" {
			t.Fatal("New with Config.TLS connected without TLS")
		}
		return
	}
	if !errors.Is(err, mysql.ErrNoTLS) {
		t.Fatalf("New with Config.TLS against a server without TLS: %v, want mysql.ErrNoTLS", err)
	}
}

func TestPasswordRedaction(t *testing.T) {
	const secret = "Sup3r-s3cret_pw"
	server := testenv.MySQLServerDSN(t)
	mc, err := mysql.ParseDSN(server)
	if err != nil {
		t.Fatal(err)
	}
	wrongPassword := mc.Clone()
	wrongPassword.Passwd = secret
	unreachable := mc.Clone()
	unreachable.Passwd = secret
	unreachable.Addr = "127.0.0.1:1"

	tests := []struct {
		name string
		dsn  string
	}{
		{"wrong password", wrongPassword.FormatDSN()},
		{"unreachable server", unreachable.FormatDSN()},
		{"no slash", "eddy:" + secret + "@tcp(127.0.0.1:3306)"},
		{"bad parameter", "eddy:" + secret + "@tcp(127.0.0.1:3306)/db?parseTime=maybe"},
		{"password with a slash", "eddy:a/" + secret + "@tcp(127.0.0.1:3306)/db"},
		{"unknown tls config", "eddy:" + secret + "@tcp(127.0.0.1:3306)/db?tls=nosuchconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := New(ctx, Config{DSN: tt.dsn, SweepInterval: -1})
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded, want an error")
			}
			msg := fmt.Sprintf("%v %+v %#v", err, err, err)
			for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
				msg += " " + e.Error()
			}
			if strings.Contains(msg, secret) {
				t.Fatalf("error leaks the password: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}

	t.Run("Config printing", func(t *testing.T) {
		cfg := Config{DSN: wrongPassword.FormatDSN(), Namespace: "ns"}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, cfg)
			if strings.Contains(out, secret) {
				t.Errorf("%s of Config leaks the password: %s", verb, out)
			}
			if !strings.Contains(out, "xxxxx") || !strings.Contains(out, `Namespace:"ns"`) {
				t.Errorf("%s of Config = %s, want the DSN redacted and the other fields shown", verb, out)
			}
		}
		if out := fmt.Sprintf("%v", &cfg); strings.Contains(out, secret) {
			t.Errorf("%%v of *Config leaks the password: %s", out)
		}
	})
	t.Run("driver error quoting the password", func(t *testing.T) {
		err := redactErr(errors.New("invalid value: "+secret+" in "+secret), dsnPassword("u:"+secret+"@tcp(h)/d"))
		if strings.Contains(err.Error(), secret) || err.Error() != "invalid value: xxxxx in xxxxx" {
			t.Errorf("redactErr = %q", err)
		}
		if errors.Unwrap(err) != nil {
			t.Error("a redacted error unwraps to the original, which would bring the password back")
		}
		plain := errors.New("no secret here")
		if redactErr(plain, secret) != plain {
			t.Error("redactErr replaced an error that does not quote the password")
		}
	})
	t.Run("RedactDSN", func(t *testing.T) {
		got := RedactDSN("eddy:" + secret + "@tcp(db:3306)/eddy?parseTime=true")
		if strings.Contains(got, secret) || !strings.Contains(got, "eddy:xxxxx@tcp(db:3306)/eddy") {
			t.Errorf("RedactDSN = %q", got)
		}
		if got := RedactDSN("eddy:" + secret + "@tcp(db:3306)"); strings.Contains(got, secret) {
			t.Errorf("RedactDSN of an unparsable DSN = %q", got)
		}
	})
}
