package backends

import (
	"context"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
)

func TestSQLNamespace(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"orders", "eddy_orders"},
		{"clicks-per-user.v2", "eddy_clicks_per_user_v2"},
	} {
		if got := SQLNamespace(c.name); got != c.want {
			t.Errorf("SQLNamespace(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	a, b := SQLNamespace(strings.Repeat("x", 60)+"a"), SQLNamespace(strings.Repeat("x", 60)+"b")
	if len(a) > 48 || a == b {
		t.Errorf("long names: %q and %q (must be <= 48 chars and distinct)", a, b)
	}
}

// TestOpenEachBackend opens every backend from a pipeline file and checks
// that it is a working store, namespaced by the pipeline's name.
func TestOpenEachBackend(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ name, state string }{
		{"memory", `{backend: memory}`},
		{"redis", `{backend: redis, redis: {addrs: [` + testenv.RedisAddr(t) + `], key_prefix: "` + testenv.RedisPrefix(t) + `"}}`},
		{"singlestore", `{backend: singlestore, singlestore: {dialect: mysql, dsn: "` + testenv.MySQL(t) + `"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := pipeline.Parse("p.yaml", []byte(`
name: backends-test
kafka: {brokers: [127.0.0.1:9092]}
source: {topics: [in]}
state: `+c.state+`
sink: {topic: out}
`))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			part := statedb.Partition{Topic: "in"}
			cl, err := s.Acquire(ctx, part)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Commit(ctx, &statedb.Commit{Partition: part, Epoch: cl.Epoch, Offset: 7,
				Puts: []statedb.Entry{{Key: "k", Value: []byte("v")}}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Load(ctx, part, []string{"k"})
			if err != nil || string(got["k"]) != "v" {
				t.Fatalf("Load = %q, %v; want v", got["k"], err)
			}
		})
	}
}
