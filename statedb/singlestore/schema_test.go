package singlestore

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/statedb"
)

// TestDDLSingleStoreOwners pins the whole SingleStore DDL of one table: it
// cannot be run here, so its exact text is the test.
func TestDDLSingleStoreOwners(t *testing.T) {
	stmts, err := DDL(DialectSingleStore, "pipe")
	if err != nil {
		t.Fatal(err)
	}
	want := "CREATE ROWSTORE TABLE IF NOT EXISTS `pipe_owners` (\n" +
		"  `topic` VARBINARY(255) NOT NULL,\n" +
		"  `part` INT NOT NULL,\n" +
		"  `epoch` BIGINT NOT NULL,\n" +
		"  `watermark` BIGINT NOT NULL,\n" +
		"  `meta` LONGBLOB NULL,\n" +
		"  `commits` BIGINT NOT NULL DEFAULT 0,\n" +
		"  PRIMARY KEY (`topic`, `part`),\n" +
		"  SHARD KEY (`topic`, `part`)\n" +
		")"
	if stmts[0] != want {
		t.Errorf("owners DDL:\n%s\nwant:\n%s", stmts[0], want)
	}
}

func TestDDLPerDialect(t *testing.T) {
	primary := regexp.MustCompile(`PRIMARY KEY \(([^)]*)\)`)
	tests := []struct {
		dialect   string
		prefix    string
		mustHave  []string
		mustNotBe []string
	}{
		{DialectSingleStore, "CREATE ROWSTORE TABLE IF NOT EXISTS `ns_",
			[]string{"SHARD KEY (`topic`, `part`)"}, []string{"ENGINE", "InnoDB"}},
		{DialectMySQL, "CREATE TABLE IF NOT EXISTS `ns_",
			[]string{") ENGINE=InnoDB"}, []string{"SHARD", "ROWSTORE"}},
		{"", "CREATE TABLE IF NOT EXISTS `ns_", // the default is mysql
			[]string{") ENGINE=InnoDB"}, []string{"SHARD", "ROWSTORE"}},
	}
	for _, tt := range tests {
		t.Run("dialect="+tt.dialect, func(t *testing.T) {
			stmts, err := DDL(tt.dialect, "ns")
			if err != nil {
				t.Fatal(err)
			}
			names := []string{"owners", "state", "ids", "timers"}
			if len(stmts) != len(names) {
				t.Fatalf("%d statements, want %d", len(stmts), len(names))
			}
			for i, q := range stmts {
				if !strings.HasPrefix(q, tt.prefix+names[i]+"` (") {
					t.Errorf("statement %d begins %.60q, want %q", i, q, tt.prefix+names[i])
				}
				for _, s := range tt.mustHave {
					if !strings.Contains(q, s) {
						t.Errorf("%s table lacks %q:\n%s", names[i], s, q)
					}
				}
				for _, s := range tt.mustNotBe {
					if strings.Contains(q, s) {
						t.Errorf("%s table has %q:\n%s", names[i], s, q)
					}
				}
				// Every primary key starts with the shard key.
				m := primary.FindStringSubmatch(q)
				if m == nil || !strings.HasPrefix(m[1], "`topic`, `part`") {
					t.Errorf("%s table: primary key %v does not begin with (topic, part)", names[i], m)
				}
				// Binary-safe columns: no character column anywhere.
				for _, s := range []string{"CHAR", "TEXT", "COLLATE"} {
					if strings.Contains(strings.ReplaceAll(q, "VARBINARY", ""), s) {
						t.Errorf("%s table has a %s column:\n%s", names[i], s, q)
					}
				}
			}
			if !strings.Contains(stmts[1], "`k` VARBINARY(1024)") || !strings.Contains(stmts[1], "`v` LONGBLOB NOT NULL") {
				t.Errorf("state table columns:\n%s", stmts[1])
			}
			if !strings.Contains(stmts[3], "KEY `due` (`topic`, `part`, `due`)") {
				t.Errorf("timers table lacks its (topic, part, due) index:\n%s", stmts[3])
			}
		})
	}
	if _, err := DDL("oracle", "ns"); err == nil || !strings.Contains(err.Error(), "Config.Dialect") {
		t.Errorf("DDL(oracle) = %v, want an error naming Config.Dialect", err)
	}
	if stmts, _ := DDL("", ""); !strings.Contains(stmts[0], "`eddy_owners`") {
		t.Errorf("default namespace DDL: %s", stmts[0])
	}
}

// TestDMLSameAcrossDialects builds the statements of a commit for both
// dialects: they must be identical, so that the SQL tested on MariaDB is the
// SQL SingleStore runs. (Acquire, the reads and the sweep never look at the
// dialect.)
func TestDMLSameAcrossDialects(t *testing.T) {
	mk := func(dialect string) *Store {
		cfg, err := Config{Dialect: dialect, Namespace: "ns"}.withDefaults(true)
		if err != nil {
			t.Fatal(err)
		}
		return newStore(nil, false, cfg, nil)
	}
	my, ss := mk(DialectMySQL), mk(DialectSingleStore)
	c := &statedb.Commit{
		Partition: statedb.Partition{Topic: "t", Partition: 1}, Epoch: 3, Offset: 4, Meta: []byte("m"),
		Puts:        []statedb.Entry{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2"), TTL: time.Second}},
		Deletes:     []string{"c"},
		IDs:         []string{"i"},
		IDTTL:       time.Hour,
		SetTimers:   []statedb.Timer{{Key: "w", Due: 9}},
		ClearTimers: []string{"x"},
	}
	texts := func(s *Store) []string {
		out := []string{s.fenceStmt(c).q}
		for _, st := range s.commitBody(c) {
			out = append(out, st.q)
		}
		return out
	}
	a, b := texts(my), texts(ss)
	if !slices.Equal(a, b) {
		t.Errorf("commit statements differ across dialects:\nmysql:       %q\nsinglestore: %q", a, b)
	}
	if len(a) != 6 {
		t.Errorf("commit has %d statements, want fence + 5", len(a))
	}
	for _, q := range a {
		for _, bad := range []string{"REPLACE", "RETURNING", "MERGE", "AS new", "ON CONFLICT"} {
			if strings.Contains(q, bad) {
				t.Errorf("statement uses %s, which one of the dialects lacks: %s", bad, q)
			}
		}
	}
	if !strings.Contains(a[2], "UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND") || !strings.Contains(a[2], "(?, ?, ?, ?, NULL)") {
		t.Errorf("put statement does not set expire_at from the server clock per entry: %s", a[2])
	}
}
