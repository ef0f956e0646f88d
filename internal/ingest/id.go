package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// ID is the eddy-id of the record at line of the input named source:
// "<source>:<line>". It is the same on every run over the same input
// under the same name, so a reader that deduplicates by eddy-id (an eddy
// pipeline with dedup on) drops the records a re-run sends again.
func ID(source string, line int) string {
	b := make([]byte, 0, len(source)+12)
	b = append(b, source...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(line), 10)
	return string(b)
}

// RunName is a name no other run or request uses: prefix, a dash and 16
// random hex digits. Records of an input that has no stable name (stdin
// without -source-name, an HTTP request without an Idempotency-Key) are
// named by one, so a reader deduplicating by eddy-id never takes them for
// another input's.
func RunName(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted, in bytes.
const MaxIdempotencyKey = 200

// RequestSource is the source name of an HTTP request's records: "http:"
// and its Idempotency-Key, so that the same request sent again gives the
// same IDs; without a key, a name of its own (RunName("http")).
func RequestSource(idempotencyKey string) (string, error) {
	if idempotencyKey == "" {
		return RunName("http"), nil
	}
	if len(idempotencyKey) > MaxIdempotencyKey {
		return "", fmt.Errorf("Idempotency-Key: %d bytes, at most %d", len(idempotencyKey), MaxIdempotencyKey)
	}
	for i := 0; i < len(idempotencyKey); i++ {
		if c := idempotencyKey[i]; c <= ' ' || c > '~' {
			return "", errors.New("Idempotency-Key: printable ASCII without spaces only (a UUID, say)")
		}
	}
	return "http:" + idempotencyKey, nil
}
