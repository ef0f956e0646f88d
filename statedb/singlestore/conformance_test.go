package singlestore

import (
	"os"
	"testing"

	"github.com/eddy-streams/eddy/integration/testenv"
	"github.com/eddy-streams/eddy/statedb"
	"github.com/eddy-streams/eddy/statedb/statedbtest"
)

// conformance runs the statedb contract against dsn in dialect: each store
// gets a namespace of its own in one database, and reopening closes the
// store and opens a new pool on the same namespace.
func conformance(t *testing.T, dsn, dialect string) {
	namespaces := map[statedb.Store]string{}
	open := func(t *testing.T, ns string) statedb.Store {
		s, err := New(testCtx(t), Config{DSN: dsn, Dialect: dialect, Namespace: ns, SweepInterval: -1})
		if err != nil {
			t.Fatalf("New(namespace %s): %v", ns, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		namespaces[s] = ns
		return s
	}
	statedbtest.Run(t,
		func(t *testing.T) statedb.Store { return open(t, testenv.Unique("c")) },
		statedbtest.WithReopen(func(t *testing.T, old statedb.Store) statedb.Store {
			if err := old.Close(); err != nil {
				t.Fatalf("Close before reopen: %v", err)
			}
			return open(t, namespaces[old])
		}))
}

func TestConformanceMariaDB(t *testing.T) {
	conformance(t, freshDSN(t), DialectMySQL)
}

// TestConformanceSingleStore runs the same suite with the SingleStore DDL
// against a real SingleStore when EDDY_SINGLESTORE_DSN names one (a
// database the user may create tables in). The contract itself is covered
// on MariaDB above.
func TestConformanceSingleStore(t *testing.T) {
	dsn := os.Getenv("EDDY_SINGLESTORE_DSN")
	if dsn == "" {
		t.Skip("EDDY_SINGLESTORE_DSN is not set; the contract is covered on MariaDB by TestConformanceMariaDB")
	}
	conformance(t, dsn, DialectSingleStore)
}
