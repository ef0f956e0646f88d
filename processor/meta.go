package processor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/eddy-streams/eddy/windows"
)

// The partition's metadata, committed with every flush and returned by the
// next Acquire, holds the partition's watermark and state layout (entries
// whose names start with a 0 byte) and, in state written before layout 2,
// the aggregates' watermarks by step name. Encoding: version 1, uvarint n, then n times (uvarint len,
// name, uvarint len, value), sorted by name.

const metaVersion = 1

var errBadMeta = errors.New("malformed partition metadata")

func encodeMeta(m map[string][]byte) []byte {
	if len(m) == 0 {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	b := []byte{metaVersion}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return b
}

func decodeMeta(b []byte) (map[string][]byte, error) {
	m := map[string][]byte{}
	if len(b) == 0 {
		return m, nil
	}
	if b[0] != metaVersion {
		return m, errBadMeta
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return m, errBadMeta
	}
	b = b[k:]
	next := func() ([]byte, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(l)]
		b = b[k+int(l):]
		return v, true
	}
	for range n {
		name, ok1 := next()
		val, ok2 := next()
		if !ok1 || !ok2 {
			return map[string][]byte{}, errBadMeta
		}
		m[string(name)] = slices.Clone(val)
	}
	if len(b) != 0 {
		return map[string][]byte{}, errBadMeta
	}
	return m, nil
}

// Metadata entries of the partition itself; steps' names never start with
// a 0 byte.
const (
	// metaWatermark is the partition's watermark (windows.Watermark's
	// encoding).
	metaWatermark = "\x00watermark"
	// metaLayout is the state layout the partition's state was written
	// in: layoutVersion, or absent for state written before operators
	// had scopes (each aggregate then kept its own watermark under its
	// step name, and custom processors' keys were not scoped).
	metaLayout    = "\x00layout"
	layoutVersion = "2"
)

// restoreWatermark sets wm from the partition's metadata: the partition's
// watermark, or, in state written before layout 2, the greatest of the
// aggregates' watermarks (the first aggregate's, which saw the source
// events). On error wm is unchanged.
func restoreWatermark(wm *windows.Watermark, meta map[string][]byte) error {
	if b, ok := meta[metaWatermark]; ok {
		return wm.UnmarshalBinary(b)
	}
	var best []byte
	bestAt := int64(math.MinInt64)
	for k, b := range meta {
		if strings.HasPrefix(k, "\x00") {
			continue
		}
		x := windows.NewWatermark(0)
		if err := x.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("step %s: %w", k, err)
		}
		if best == nil || x.Current() > bestAt {
			best, bestAt = b, x.Current()
		}
	}
	if best == nil {
		return nil
	}
	return wm.UnmarshalBinary(best)
}
