package processor

import (
	"encoding/binary"
	"errors"
	"slices"
)

// The partition's metadata, committed with every flush and returned by the
// next Acquire, holds the event-time state of its steps (their watermarks),
// by step name. Encoding: version 1, uvarint n, then n times (uvarint len,
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
