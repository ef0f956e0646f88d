package route

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/integration/testenv"
)

// keys is a table of keys of every length 0 to 40 and of every tail
// length, ASCII and not.
func keys() []string {
	out := []string{"", "a", "ab", "abc", "abcd", "k000", "user-42", "héllo", "日本語のキー"}
	for i := range 400 {
		out = append(out, fmt.Sprintf("key-%d", i), strings.Repeat("x", i%41)+strconv.Itoa(i*7919))
	}
	return out
}

var counts = []int32{1, 2, 3, 7, 12, 100}

// TestHashMatchesJavaProducer pins HashPartition to Apache Kafka's Java
// producer: the kafka-clients jar that `make services` resolved places
// every key of the table, for several partition counts, where eddy does.
func TestHashMatchesJavaProducer(t *testing.T) {
	lib, version := testenv.KafkaLib(t)
	ks := keys()
	var in bytes.Buffer
	for _, k := range ks[1:] { // one key per line: the empty one is checked against sarama below
		in.WriteString(k + "\n")
	}
	args := []string{"-cp", filepath.Join(lib, "*"), filepath.Join("testdata", "JavaPartition.java")}
	for _, n := range counts {
		args = append(args, strconv.Itoa(int(n)))
	}
	cmd := exec.Command("java", args...)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java JavaPartition (kafka-clients %s): %v", version, err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(ks)-1 {
		t.Fatalf("java printed %d lines for %d keys", len(lines), len(ks)-1)
	}
	for i, line := range lines {
		k := ks[i+1]
		for j, f := range strings.Fields(line) {
			want, _ := strconv.Atoi(f)
			if got := HashPartition([]byte(k), counts[j]); got != int32(want) {
				t.Errorf("key %q, %d partitions: eddy %d, Java producer (kafka-clients %s) %d", k, counts[j], got, version, want)
			}
		}
	}
}

// TestHashMatchesSarama checks the same table against sarama's murmur2
// partitioner, which needs no Java.
func TestHashMatchesSarama(t *testing.T) {
	for _, k := range keys() {
		for _, n := range counts {
			want, err := sarama.NewMurmur2Partitioner("t").Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(k)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := HashPartition([]byte(k), n); got != want {
				t.Errorf("key %q, %d partitions: %d, sarama %d", k, n, got, want)
			}
		}
	}
}

// TestRoutesAreReplayStable: every policy gives the same partitions for
// the same record, from a fresh router, in any order.
func TestRoutesAreReplayStable(t *testing.T) {
	for _, p := range Policies() {
		r1, _ := New(p)
		r2, _ := New(p)
		ks := keys()
		first := make([][]int32, len(ks))
		for i, k := range ks {
			first[i] = r1.Route(nil, []byte(k), "id-"+k, 12)
		}
		for i := len(ks) - 1; i >= 0; i-- {
			if again := r2.Route(nil, []byte(ks[i]), "id-"+ks[i], 12); !slices.Equal(again, first[i]) {
				t.Errorf("%s: key %q routed to %v, then to %v", p, ks[i], first[i], again)
			}
		}
	}
}

// TestConsistentHashMovesFewKeys measures how many of 100,000 keys move
// when a topic grows from 12 to 13 partitions: with consistent-hash
// 1/13 of them (7.7%), all to the new partition; with hash about 12/13.
func TestConsistentHashMovesFewKeys(t *testing.T) {
	jump, _ := New(ConsistentHash)
	hash, _ := New(Hash)
	const n = 100_000
	movedJump, movedHash := 0, 0
	for i := range n {
		k := []byte("user-" + strconv.Itoa(i))
		a, b := jump.Route(nil, k, "", 12)[0], jump.Route(nil, k, "", 13)[0]
		if a != b {
			movedJump++
			if b != 12 {
				t.Fatalf("key %s moved from %d to %d, not to the new partition 12", k, a, b)
			}
		}
		if hash.Route(nil, k, "", 12)[0] != hash.Route(nil, k, "", 13)[0] {
			movedHash++
		}
	}
	t.Logf("12 -> 13 partitions: consistent-hash moved %d of %d keys (%.1f%%), hash %d (%.1f%%)",
		movedJump, n, 100*float64(movedJump)/n, movedHash, 100*float64(movedHash)/n)
	if f := float64(movedJump) / n; f < 0.9/13 || f > 1.1/13 {
		t.Errorf("consistent-hash moved %.2f%% of the keys, want about %.2f%%", 100*f, 100.0/13)
	}
	if f := float64(movedHash) / n; f < 0.85 {
		t.Errorf("hash moved only %.2f%% of the keys: the comparison is void", 100*f)
	}
	// And it spreads evenly.
	per := make([]int, 13)
	for i := range n {
		per[jump.Route(nil, []byte("user-"+strconv.Itoa(i)), "", 13)[0]]++
	}
	checkEven(t, "consistent-hash", per, n)
}

// TestRoundRobinSpreadsEvenly: 120,000 records with one key and distinct
// IDs spread over 12 partitions within 3% of 10,000 each.
func TestRoundRobinSpreadsEvenly(t *testing.T) {
	r, _ := New(RoundRobin)
	const n = 120_000
	per := make([]int, 12)
	for i := range n {
		per[r.Route(nil, []byte("same-key"), fmt.Sprintf("pipeline-out-%d", i), 12)[0]]++
	}
	checkEven(t, "round-robin", per, n)
}

func checkEven(t *testing.T, name string, per []int, n int) {
	t.Helper()
	want := float64(n) / float64(len(per))
	for p, c := range per {
		if d := float64(c)/want - 1; d > 0.03 || d < -0.03 {
			t.Errorf("%s: partition %d got %d records, want %.0f ± 3%% (%v)", name, p, c, want, per)
		}
	}
}

func TestMulticastAndCopyIDs(t *testing.T) {
	r, _ := New(Multicast)
	if got := r.Route([]int32{9}, []byte("k"), "id", 3); !slices.Equal(got, []int32{9, 0, 1, 2}) {
		t.Errorf("multicast appended %v, want [9 0 1 2]", got)
	}
	seen := map[string]bool{}
	for p := range int32(3) {
		id := CopyID("id", p)
		if seen[id] || id != CopyID("id", p) {
			t.Errorf("copy ID %q of partition %d is not distinct and stable", id, p)
		}
		seen[id] = true
	}
}

func TestKeylessRecordsRouteByID(t *testing.T) {
	for _, p := range []Policy{Hash, ConsistentHash} {
		r, _ := New(p)
		spread := map[int32]bool{}
		for i := range 100 {
			id := "id-" + strconv.Itoa(i)
			a := r.Route(nil, nil, id, 12)[0]
			if b := r.Route(nil, []byte(id), "other", 12)[0]; a != b {
				t.Errorf("%s: keyless record with ID %s on %d, a record keyed %s on %d", p, id, a, id, b)
			}
			spread[a] = true
		}
		if len(spread) < 10 {
			t.Errorf("%s: 100 keyless records on %d partitions only", p, len(spread))
		}
	}
}

func TestUnknownPolicy(t *testing.T) {
	_, err := New("random")
	if err == nil || !strings.Contains(err.Error(), `"random"`) || !strings.Contains(err.Error(), "consistent-hash") {
		t.Errorf("New(random) = %v, want an error naming it and the policies", err)
	}
}
