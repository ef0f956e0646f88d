package singlestore

import "fmt"

// Column limits. Keys, event IDs and timer keys are VARBINARY(MaxKeyLen);
// values and metadata are LONGBLOB (bounded in practice by the server's
// max_allowed_packet, 16 MiB on MariaDB and 64 MiB on MySQL by default).
const (
	// MaxKeyLen is the longest state key, event ID or timer key, in bytes.
	MaxKeyLen = 1024
	// MaxTopicLen is the longest topic name, in bytes (Kafka allows 249).
	MaxTopicLen = 255
)

// tables holds the quoted names of a namespace's tables.
type tables struct {
	owners, state, ids, timers string
}

func newTables(namespace string) tables {
	q := func(s string) string { return "`" + namespace + "_" + s + "`" }
	return tables{owners: q("owners"), state: q("state"), ids: q("ids"), timers: q("timers")}
}

// ddl returns the CREATE TABLE IF NOT EXISTS statements of the namespace's
// tables in dialect, owners first.
//
// Both dialects have the same columns and the same primary keys, which all
// begin with (topic, part): every statement of a commit touches one
// partition's rows. SingleStore additionally needs a rowstore table (point
// reads and writes, row locks) with SHARD KEY (topic, part), so that all of a
// partition's rows live on one SingleStore partition and a commit is a
// single-partition transaction; its primary keys contain the shard key as
// SingleStore requires.
func ddl(dialect string, t tables) []string {
	create, suffix, shard := "CREATE TABLE IF NOT EXISTS", " ENGINE=InnoDB", ""
	if dialect == DialectSingleStore {
		create, suffix, shard = "CREATE ROWSTORE TABLE IF NOT EXISTS", "", ",\n  SHARD KEY (`topic`, `part`)"
	}
	part := fmt.Sprintf("  `topic` VARBINARY(%d) NOT NULL,\n  `part` INT NOT NULL,\n", MaxTopicLen)
	return []string{
		create + " " + t.owners + " (\n" + part +
			"  `epoch` BIGINT NOT NULL,\n" +
			"  `watermark` BIGINT NOT NULL,\n" +
			"  `meta` LONGBLOB NULL,\n" +
			"  `commits` BIGINT NOT NULL DEFAULT 0,\n" +
			"  PRIMARY KEY (`topic`, `part`)" + shard + "\n)" + suffix,

		create + " " + t.state + " (\n" + part +
			fmt.Sprintf("  `k` VARBINARY(%d) NOT NULL,\n", MaxKeyLen) +
			"  `v` LONGBLOB NOT NULL,\n" +
			"  `expire_at` DATETIME(6) NULL,\n" +
			"  PRIMARY KEY (`topic`, `part`, `k`),\n" +
			"  KEY `expire_at` (`expire_at`)" + shard + "\n)" + suffix,

		create + " " + t.ids + " (\n" + part +
			fmt.Sprintf("  `id` VARBINARY(%d) NOT NULL,\n", MaxKeyLen) +
			"  `expire_at` DATETIME(6) NULL,\n" +
			"  PRIMARY KEY (`topic`, `part`, `id`),\n" +
			"  KEY `expire_at` (`expire_at`)" + shard + "\n)" + suffix,

		create + " " + t.timers + " (\n" + part +
			fmt.Sprintf("  `k` VARBINARY(%d) NOT NULL,\n", MaxKeyLen) +
			"  `due` BIGINT NOT NULL,\n" +
			"  PRIMARY KEY (`topic`, `part`, `k`),\n" +
			"  KEY `due` (`topic`, `part`, `due`)" + shard + "\n)" + suffix,
	}
}
