//go:build chaos

package chaos_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"

	"github.com/eddy-streams/eddy/statedb/backends"
)

// storeContents is what a backend holds for a pipeline, read around the
// Store interface (which has no way to list keys).
type storeContents struct {
	state []string // state keys, without the partition part
	ids   int      // recorded event IDs, all partitions
}

// backend is one state backend the test runs against.
type backend struct {
	name string
	// yaml is the pipeline's state section.
	yaml string
	// contents lists what the store holds for the pipeline named name.
	contents func(ctx context.Context, name string) (storeContents, error)
}

// redisBackend keeps state in Redis under prefix.
func redisBackend(addr, prefix string) backend {
	return backend{
		name: "redis",
		yaml: fmt.Sprintf("state:\n  backend: redis\n  redis: {addrs: [%q], key_prefix: %q}\n", addr, prefix),
		contents: func(ctx context.Context, name string) (storeContents, error) {
			// backends.Open namespaces keys as <key_prefix><name>:; then
			// {<topic>:<n>}:s:<key> for state and {<topic>:<n>}:ids for IDs.
			ns := prefix + name + ":"
			rdb := goredis.NewClient(&goredis.Options{Addr: addr})
			defer rdb.Close()
			var sc storeContents
			iter := rdb.Scan(ctx, 0, ns+"*", 1000).Iterator()
			for iter.Next(ctx) {
				k := iter.Val()
				_, rest, ok := strings.Cut(k, "}:")
				if !ok {
					return sc, fmt.Errorf("redis key %q has no partition tag", k)
				}
				switch {
				case strings.HasPrefix(rest, "s:"):
					sc.state = append(sc.state, strings.TrimPrefix(rest, "s:"))
				case rest == "ids":
					n, err := rdb.ZCard(ctx, k).Result()
					if err != nil {
						return sc, fmt.Errorf("zcard %s: %w", k, err)
					}
					sc.ids += int(n)
				}
			}
			return sc, iter.Err()
		},
	}
}

// mysqlBackend keeps state in the MySQL/MariaDB database of dsn.
func mysqlBackend(dsn string) backend {
	return backend{
		name: "mariadb",
		yaml: fmt.Sprintf("state:\n  backend: singlestore\n  singlestore: {dsn: %q, dialect: mysql, wait_timeout: 5s}\n", dsn),
		contents: func(ctx context.Context, name string) (storeContents, error) {
			// Tables <ns>_state (topic, part, k) and <ns>_ids (topic, part, id).
			ns := backends.SQLNamespace(name)
			db, err := sql.Open("mysql", dsn)
			if err != nil {
				return storeContents{}, err
			}
			defer db.Close()
			var sc storeContents
			rows, err := db.QueryContext(ctx, "SELECT k FROM `"+ns+"_state` WHERE expire_at IS NULL OR expire_at > UTC_TIMESTAMP(6)")
			if err != nil {
				return sc, fmt.Errorf("%s_state: %w", ns, err)
			}
			defer rows.Close()
			for rows.Next() {
				var k []byte
				if err := rows.Scan(&k); err != nil {
					return sc, fmt.Errorf("%s_state: %w", ns, err)
				}
				sc.state = append(sc.state, string(k))
			}
			if err := rows.Err(); err != nil {
				return sc, fmt.Errorf("%s_state: %w", ns, err)
			}
			err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+ns+"_ids` WHERE expire_at IS NULL OR expire_at > UTC_TIMESTAMP(6)").Scan(&sc.ids)
			if err != nil {
				return sc, fmt.Errorf("%s_ids: %w", ns, err)
			}
			return sc, nil
		},
	}
}
