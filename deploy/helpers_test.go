package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/eddy-streams/eddy/pipeline"
)

// repoRoot is the repository's top directory (this package is deploy/).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(file))
}

// readFile reads a file relative to the repository root.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// strictDecode decodes one YAML document into v the way the API server
// would reject it: duplicate keys and fields v does not have are errors.
func strictDecode(t *testing.T, name string, data []byte, v any) {
	t.Helper()
	j, err := sigsyaml.YAMLToJSONStrict(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// varRef matches a ${NAME} or ${NAME:-default} reference in a pipeline
// file; "$${" (a literal "${") does not match, see pipelineVars.
var varRef = regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// pipelineVars lists the variables a pipeline file references (outside
// comments): required (no default) and optional (with a default), each
// sorted.
func pipelineVars(data []byte) (required, optional []string) {
	req, opt := map[string]bool{}, map[string]bool{}
	for _, m := range varRef.FindAllSubmatch(stripComments(data), -1) {
		if bytes.HasPrefix(m[0], []byte("$$")) {
			continue
		}
		if len(m[2]) > 0 {
			opt[string(m[1])] = true
		} else {
			req[string(m[1])] = true
		}
	}
	return sortedKeys(req), sortedKeys(opt)
}

// stripComments removes YAML comments: from a '#' at the start of a line
// or after a blank, outside quotes, to the end of the line.
func stripComments(data []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		var quote byte
		end := len(line)
	scan:
		for i, c := range line {
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
				end = i
				break scan
			}
		}
		out.Write(line[:end])
		if end < len(line) && bytes.HasSuffix(line, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// rawField returns a scalar of a YAML file as written (before ${VAR}
// expansion), by path of mapping keys; "" if absent.
func rawField(t *testing.T, data []byte, path ...string) string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	n := &doc
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
next:
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return ""
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				n = n.Content[i+1]
				continue next
			}
		}
		return ""
	}
	return n.Value
}

// parsePipeline parses a pipeline file with env as its only environment.
func parsePipeline(t *testing.T, name string, data []byte, env map[string]string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Parse(name, data, pipeline.WithEnv(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}))
	if err != nil {
		t.Fatalf("pipeline %s does not load with the environment the deployment gives it: %v", name, err)
	}
	return p
}

// pipelineTopics lists every topic a pipeline reads or writes.
func pipelineTopics(p *pipeline.Pipeline) []string {
	ts := append([]string{}, p.Spec.Source.Topics...)
	if p.Spec.Sink != nil {
		ts = append(ts, p.Spec.Sink.Topic)
	}
	if p.Spec.DeadLetter != nil {
		ts = append(ts, p.Spec.DeadLetter.Topic)
	}
	for _, s := range p.Spec.Steps {
		if s.Aggregate != nil && s.Aggregate.Late != nil {
			ts = append(ts, s.Aggregate.Late.Topic)
		}
	}
	return ts
}

func TestPipelineVars(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		req, opt []string
	}{
		{"none", "brokers: [a:9092]", nil, nil},
		{"required and optional", `a: ${A}, b: "${B:-x}", c: ${A}`, []string{"A"}, []string{"B"}},
		{"empty default", `p: "${P:-}"`, nil, []string{"P"}},
		{"escaped", `x: $${NOT_A_VAR} ${REAL}`, []string{"REAL"}, nil},
		{"comments", "# uses ${IN_COMMENT}\na: ${A} # and ${TRAILING}\nb: \"#${QUOTED}\"", []string{"A", "QUOTED"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, opt := pipelineVars([]byte(tc.in))
			if !equalStrings(req, tc.req) || !equalStrings(opt, tc.opt) {
				t.Errorf("pipelineVars(%q) = %v, %v; want %v, %v", tc.in, req, opt, tc.req, tc.opt)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
