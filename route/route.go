// Package route places records on partitions: the routing policies of a
// pipeline's sink and of `worker ingest`.
//
// Every route is a pure function of the record's key and ID, never of a
// counter, the clock or which worker sends it: an output produced again
// after a crash or a replay lands on the partition of its first copy, so
// a reader that deduplicates per partition (by the eddy-id header) drops
// it. The policies:
//
//	hash             murmur2 of the key modulo the partition count, as
//	                 Apache Kafka's Java producer places a keyed record, so
//	                 Java producers and eddy agree (the default)
//	consistent-hash  jump consistent hash of the key: when partitions are
//	                 added, only the keys that must move do (1/(n+1) of
//	                 them going from n to n+1 partitions, where hash moves
//	                 about n/(n+1))
//	round-robin      an even spread that ignores the key: murmur2 of the
//	                 ID. Not a strict rotation: a rotation depends on the
//	                 order and the batches in which records are sent, which
//	                 a replay does not repeat
//	multicast        every partition; each copy needs an ID of its own
//	                 (CopyID), or a deduplicating reader of the topic keeps
//	                 one copy only
//
// A record without a key is placed by hash and consistent-hash as if its
// ID were its key (the Java producer's sticky placement of keyless records
// is not replay-stable).
package route

import (
	"fmt"
	"strconv"
	"strings"
)

// Policy names a routing policy as written in a pipeline file.
type Policy string

// The policies.
const (
	Hash           Policy = "hash"
	ConsistentHash Policy = "consistent-hash"
	RoundRobin     Policy = "round-robin"
	Multicast      Policy = "multicast"
)

// Policies lists every policy, the default first.
func Policies() []Policy { return []Policy{Hash, ConsistentHash, RoundRobin, Multicast} }

// Router chooses the partitions of a record.
type Router interface {
	// Route appends to dst the partitions, among n (n > 0), of a record
	// with this key (nil: none) and ID, and returns the extended slice:
	// one partition for every policy but multicast.
	Route(dst []int32, key []byte, id string, n int32) []int32
}

// New returns the router of policy p.
func New(p Policy) (Router, error) {
	switch p {
	case Hash:
		return hashRouter{}, nil
	case ConsistentHash:
		return jumpRouter{}, nil
	case RoundRobin:
		return spreadRouter{}, nil
	case Multicast:
		return multicastRouter{}, nil
	}
	names := make([]string, 0, 4)
	for _, q := range Policies() {
		names = append(names, string(q))
	}
	return nil, fmt.Errorf("route: unknown policy %q (want one of %s)", string(p), strings.Join(names, ", "))
}

// Placer is a Router of one partition per record: every policy but
// multicast. Place returns what Route would append, without a slice.
type Placer interface {
	Router
	Place(key []byte, id string, n int32) int32
}

// NewPlacer returns the Placer of policy p; multicast has none.
func NewPlacer(p Policy) (Placer, error) {
	r, err := New(p)
	if err != nil {
		return nil, err
	}
	pl, ok := r.(Placer)
	if !ok {
		return nil, fmt.Errorf("route: %s places a record on every partition, not on one", p)
	}
	return pl, nil
}

// TopicCopyID is the ID of the copy of a record with ID id on topic
// when a sink multicasts to several topics: distinct per topic, the same
// on every replay. A copy multicast to every partition of its topic then
// gets CopyID(TopicCopyID(id, topic), p).
func TopicCopyID(id, topic string) string {
	return id + "@" + topic
}

// CopyID is the ID of the copy of a multicast record with ID id on
// partition p: distinct per partition, the same on every replay.
func CopyID(id string, p int32) string {
	return id + "#" + strconv.FormatInt(int64(p), 10)
}

// Murmur2 is Apache Kafka's murmur2 hash (org.apache.kafka.common.utils.
// Utils.murmur2, seed 0x9747b28c), byte for byte.
func Murmur2(data []byte) int32 {
	const (
		seed = uint32(0x9747b28c)
		m    = uint32(0x5bd1e995)
		r    = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// HashPartition is the partition, among n, of a record with this key as
// the Java producer places it: toPositive(murmur2(key)) % n.
func HashPartition(key []byte, n int32) int32 {
	return (Murmur2(key) & 0x7fffffff) % n
}

type hashRouter struct{}

func (r hashRouter) Route(dst []int32, key []byte, id string, n int32) []int32 {
	return append(dst, r.Place(key, id, n))
}

func (hashRouter) Place(key []byte, id string, n int32) int32 {
	if key == nil {
		return HashPartition([]byte(id), n)
	}
	return HashPartition(key, n)
}

type spreadRouter struct{}

func (r spreadRouter) Route(dst []int32, key []byte, id string, n int32) []int32 {
	return append(dst, r.Place(key, id, n))
}

func (spreadRouter) Place(_ []byte, id string, n int32) int32 {
	return HashPartition([]byte(id), n)
}

type multicastRouter struct{}

func (multicastRouter) Route(dst []int32, _ []byte, _ string, n int32) []int32 {
	for p := range n {
		dst = append(dst, p)
	}
	return dst
}

type jumpRouter struct{}

func (r jumpRouter) Route(dst []int32, key []byte, id string, n int32) []int32 {
	return append(dst, r.Place(key, id, n))
}

func (jumpRouter) Place(key []byte, id string, n int32) int32 {
	if key == nil {
		key = []byte(id)
	}
	return Jump(hash64(key), n)
}

// Jump is the jump consistent hash of Lamping and Veach ("A Fast, Minimal
// Memory, Consistent Hash Algorithm", 2014): the bucket, among n, of a key
// hashed to h. Going from n to n+1 buckets moves exactly the keys that
// land in the new bucket.
func Jump(h uint64, n int32) int32 {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		h = h*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((h>>33)+1)))
	}
	return int32(b)
}

// hash64 is 64-bit FNV-1a finished with splitmix64's mixer, so that keys
// differing in their last byte get unrelated hashes.
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
