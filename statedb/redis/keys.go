package redis

import (
	"strconv"
	"strings"

	"github.com/eddy-streams/eddy/statedb"
)

// Key layout of one partition P = (topic, partition) under a store's
// KeyPrefix (see the package documentation):
//
//	<prefix>{<topic>:<partition>}:meta       hash: epoch, offset, meta
//	<prefix>{<topic>:<partition>}:ids        sorted set: event ID → expiry (ms)
//	<prefix>{<topic>:<partition>}:timers     sorted set: timer key → due
//	<prefix>{<topic>:<partition>}:s:<key>    string: state value (PX TTL)
//
// The braces are the partition's hash tag: every key of P hashes to one
// Redis Cluster slot, so one script may touch them all.
const (
	metaSuffix   = ":meta"
	idsSuffix    = ":ids"
	timersSuffix = ":timers"
	stateInfix   = ":s:"
)

// partKeys are the fixed keys of one partition and the base of its state
// keys.
type partKeys struct {
	base   string // <prefix>{<topic>:<partition>}
	meta   string
	ids    string
	timers string
}

func (s *Store) keys(p statedb.Partition) partKeys {
	var b strings.Builder
	b.Grow(len(s.prefix) + len(p.Topic) + 16)
	b.WriteString(s.prefix)
	b.WriteByte('{')
	escapeTopic(&b, p.Topic)
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(int64(p.Partition), 10))
	b.WriteByte('}')
	base := b.String()
	return partKeys{base: base, meta: base + metaSuffix, ids: base + idsSuffix, timers: base + timersSuffix}
}

// state returns the Redis key of state key k.
func (k partKeys) state(key string) string { return k.base + stateInfix + key }

// escapeTopic writes topic with every byte outside Kafka's topic alphabet
// [A-Za-z0-9._-] percent-encoded (%XX, upper-case hex). Kafka topic names
// therefore appear as they are, and no topic can put a brace (which would
// end the hash tag early), a colon or a glob character into the key, or
// collide with another topic.
func escapeTopic(b *strings.Builder, topic string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}
