package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string // the rest of the line
	Line int    // where it starts
}

// stage is one FROM ... of a Dockerfile and the instructions under it.
type stage struct {
	From, Name string
	Platform   string
	Insts      []instruction
}

// parseDockerfile splits a Dockerfile into its ARGs before the first FROM,
// its stages, and its parser directives (# syntax=...). It handles what
// Dockerfiles use in practice: comments, blank lines and backslash
// continuations (with comment lines inside them).
func parseDockerfile(data []byte) (globalArgs []instruction, stages []stage, directives map[string]string, err error) {
	directives = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var cur *instruction
	inDirectives := true
	n := 0
	emit := func(in instruction) error {
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := stage{}
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--platform="); ok {
					st.Platform = v
				}
				f = f[1:]
			}
			switch {
			case len(f) == 1:
				st.From = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.From, st.Name = f[0], f[2]
			default:
				return fmt.Errorf("line %d: malformed FROM %q", in.Line, in.Args)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				return fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
			globalArgs = append(globalArgs, in)
			return nil
		}
		stages[len(stages)-1].Insts = append(stages[len(stages)-1].Insts, in)
		return nil
	}
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			if inDirectives && cur == nil {
				if k, v, ok := strings.Cut(strings.TrimSpace(line[1:]), "="); ok && !strings.ContainsAny(strings.TrimSpace(k), " \t") {
					directives[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
					continue
				}
			}
			inDirectives = false
			continue // a comment, also inside a continuation
		}
		inDirectives = false
		if line == "" {
			continue
		}
		cont := strings.HasSuffix(line, `\`)
		line = strings.TrimSuffix(line, `\`)
		if cur == nil {
			cmd, args, _ := strings.Cut(line, " ")
			cur = &instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: n}
		} else {
			cur.Args += " " + strings.TrimSpace(line)
		}
		if !cont {
			cur.Args = strings.Join(strings.Fields(cur.Args), " ")
			if err := emit(*cur); err != nil {
				return nil, nil, nil, err
			}
			cur = nil
		}
	}
	if cur != nil {
		return nil, nil, nil, fmt.Errorf("line %d: %s continues past the end of the file", cur.Line, cur.Cmd)
	}
	return globalArgs, stages, directives, sc.Err()
}

// jsonForm decodes the exec form of CMD/ENTRYPOINT (a JSON array).
func jsonForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.Args), &v); err != nil {
		t.Fatalf("Dockerfile:%d: %s must use the exec (JSON array) form, so that the worker is PID 1 and gets SIGTERM: %v", in.Line, in.Cmd, err)
	}
	return v
}

// goBuildRun finds the builder's RUN that invokes go build, and returns it
// without its --mount options.
func goBuildRun(t *testing.T, st stage) (instruction, string) {
	t.Helper()
	for _, in := range st.Insts {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		var cmd []string
		for _, f := range strings.Fields(in.Args) {
			if strings.HasPrefix(f, "--mount=") && len(cmd) == 0 {
				continue
			}
			cmd = append(cmd, f)
		}
		return in, strings.Join(cmd, " ")
	}
	t.Fatalf("stage %q has no RUN ... go build", st.Name)
	return instruction{}, ""
}

func dockerfile(t *testing.T) ([]instruction, []stage, map[string]string) {
	t.Helper()
	args, stages, dirs, err := parseDockerfile(readFile(t, "Dockerfile"))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return args, stages, dirs
}

func TestParseDockerfile(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\n# a comment\nARG V=1\nFROM --platform=$BUILDPLATFORM golang:${V} AS b\nRUN a \\\n  # inside\n  b \\\n  c\nFROM scratch\nCMD [\"x\"]\n"
	args, stages, dirs, err := parseDockerfile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if dirs["syntax"] != "docker/dockerfile:1" {
		t.Errorf("directives = %v", dirs)
	}
	if len(args) != 1 || args[0].Args != "V=1" {
		t.Errorf("global args = %+v", args)
	}
	if len(stages) != 2 || stages[0].Name != "b" || stages[0].From != "golang:${V}" || stages[0].Platform != "$BUILDPLATFORM" || stages[1].From != "scratch" {
		t.Fatalf("stages = %+v", stages)
	}
	if got := stages[0].Insts[0]; got.Cmd != "RUN" || got.Args != "a b c" || got.Line != 5 {
		t.Errorf("continued RUN = %+v", got)
	}
	for _, bad := range []string{"RUN x\nFROM scratch\n", "FROM a b\n", "FROM scratch\nRUN a \\\n"} {
		if _, _, _, err := parseDockerfile([]byte(bad)); err == nil {
			t.Errorf("parseDockerfile(%q): no error", bad)
		}
	}
}

// TestDockerfile checks the image's invariants: a Go builder stage that
// builds ./cmd/worker statically with the version stamped, and a minimal
// final stage that runs it as a numeric non-root user with the contract's
// pipeline path, port and entry point.
func TestDockerfile(t *testing.T) {
	globalArgs, stages, dirs := dockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s); want a multi-stage build (builder + runtime)", len(stages))
	}
	builder, final := stages[0], stages[len(stages)-1]

	t.Run("syntax directive", func(t *testing.T) {
		// RUN --mount needs the BuildKit Dockerfile frontend.
		if !strings.HasPrefix(dirs["syntax"], "docker/dockerfile:1") {
			t.Errorf("# syntax=%q; want docker/dockerfile:1 (RUN --mount cache mounts need it)", dirs["syntax"])
		}
	})
	t.Run("builder is golang at go.mod's version", func(t *testing.T) {
		from := builder.From
		for _, a := range globalArgs {
			k, v, _ := strings.Cut(a.Args, "=")
			from = strings.ReplaceAll(from, "${"+k+"}", v)
		}
		img, tag, _ := strings.Cut(from, ":")
		if img != "golang" {
			t.Fatalf("builder FROM %s; want the golang image", builder.From)
		}
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readFile(t, "go.mod"))
		if m == nil {
			t.Fatal("go.mod has no go directive")
		}
		if !strings.HasPrefix(tag, string(m[1])) {
			t.Errorf("builder is golang:%s; go.mod needs go %s", tag, m[1])
		}
		if builder.Platform != "$BUILDPLATFORM" {
			t.Errorf("builder --platform=%q; want $BUILDPLATFORM (cross-compile instead of emulating)", builder.Platform)
		}
	})
	in, cmd := goBuildRun(t, builder)
	t.Run("go build", func(t *testing.T) {
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "GOARCH=$TARGETARCH"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("Dockerfile:%d: the build command lacks %q: %s", in.Line, want, cmd)
			}
		}
		if f := strings.Fields(cmd); f[len(f)-1] != "./cmd/worker" {
			t.Errorf("Dockerfile:%d: the build command builds %s; want ./cmd/worker", in.Line, f[len(f)-1])
		}
		for _, cache := range []string{"target=/go/pkg/mod", "target=/root/.cache/go-build"} {
			if !strings.Contains(in.Args, "--mount=type=cache,"+cache) {
				t.Errorf("Dockerfile:%d: the build has no cache mount %s", in.Line, cache)
			}
		}
	})
	t.Run("runtime stage", func(t *testing.T) {
		if !strings.HasPrefix(final.From, "gcr.io/distroless/static") && final.From != "scratch" {
			t.Errorf("runtime FROM %s; want distroless static (or scratch): the binary is static", final.From)
		}
		out := buildOutput(t, cmd)
		var copied, user, entry, cmdInst, expose, env bool
		for _, in := range final.Insts {
			switch in.Cmd {
			case "COPY":
				f := strings.Fields(in.Args)
				if len(f) == 3 && f[0] == "--from="+builder.Name && f[1] == out {
					copied = true
					if f[2] != "/usr/local/bin/worker" {
						t.Errorf("Dockerfile:%d: the binary goes to %s; want /usr/local/bin/worker (on PATH, for ENTRYPOINT [\"worker\"])", in.Line, f[2])
					}
				}
			case "USER":
				user = true
				uid, gid, _ := strings.Cut(in.Args, ":")
				n, err := strconv.Atoi(uid)
				if err != nil || n == 0 || n != UID {
					t.Errorf("Dockerfile:%d: USER %s; want the numeric non-root %d (runAsNonRoot cannot verify a name)", in.Line, in.Args, UID)
				}
				if gid != "" && gid != strconv.Itoa(UID) {
					t.Errorf("Dockerfile:%d: USER group %s; want %d", in.Line, gid, UID)
				}
			case "ENTRYPOINT":
				entry = true
				if got := jsonForm(t, in); !equalStrings(got, []string{"worker"}) {
					t.Errorf("ENTRYPOINT %v; want [worker]", got)
				}
			case "CMD":
				cmdInst = true
				if got, want := jsonForm(t, in), []string{"run", "-c", PipelinePath}; !equalStrings(got, want) {
					t.Errorf("CMD %v; want %v", got, want)
				}
			case "EXPOSE":
				expose = expose || strings.Contains(" "+in.Args+" ", " "+strconv.Itoa(HTTPPort)+" ")
			case "ENV":
				env = env || in.Args == HTTPAddrEnv+"="+HTTPAddr
			case "RUN":
				t.Errorf("Dockerfile:%d: RUN in the runtime stage: distroless has no shell", in.Line)
			}
		}
		for what, ok := range map[string]bool{
			"COPY --from=" + builder.Name + " " + out: copied, "USER": user, "ENTRYPOINT": entry, "CMD": cmdInst,
			"EXPOSE " + strconv.Itoa(HTTPPort): expose, "ENV " + HTTPAddrEnv + "=" + HTTPAddr: env,
		} {
			if !ok {
				t.Errorf("runtime stage lacks %s", what)
			}
		}
	})
}

// buildOutput is the -o path of a go build command.
func buildOutput(t *testing.T, cmd string) string {
	t.Helper()
	f := strings.Fields(cmd)
	for i := range f[:len(f)-1] {
		if f[i] == "-o" {
			return f[i+1]
		}
	}
	t.Fatalf("the build command has no -o: %s", cmd)
	return ""
}

// TestDockerBuildMakesStaticBinary runs the Dockerfile's own go build
// command (its cache mounts aside) and proves the result is what the image
// and the manifests expect: a statically linked ELF (no interpreter, no
// dynamic section: distroless/static has no loader), the version the build
// stamped, the environment variables the manifests set, and the endpoints
// they probe.
func TestDockerBuildMakesStaticBinary(t *testing.T) {
	_, stages, _ := dockerfile(t)
	_, cmd := goBuildRun(t, stages[0])
	bin := filepath.Join(t.TempDir(), "worker")
	cmd = strings.Replace(cmd, "-o "+buildOutput(t, cmd), "-o "+bin, 1)

	const version = "v0.0.0-deploy-test"
	sh := exec.Command("sh", "-c", cmd)
	sh.Dir = repoRoot(t) // WORKDIR /src after COPY . .
	sh.Env = append(os.Environ(), "TARGETOS=linux", "TARGETARCH="+runtime.GOARCH, "VERSION="+version)
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}

	t.Run("static ELF", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			switch p.Type {
			case elf.PT_INTERP:
				t.Error("the binary has a PT_INTERP program header: it needs a dynamic loader, which distroless/static lacks")
			case elf.PT_DYNAMIC:
				t.Error("the binary has a PT_DYNAMIC segment: it is dynamically linked")
			}
		}
		if s := f.Section(".dynamic"); s != nil {
			t.Error("the binary has a .dynamic section")
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("imported libraries %v (err %v); want none", libs, err)
		}
	})
	if runtime.GOOS != "linux" {
		return // built for linux: it cannot run here
	}
	t.Run("version stamped", func(t *testing.T) {
		got, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("worker version: %v", err)
		}
		if want := "eddy worker " + version + " ("; !strings.HasPrefix(string(got), want) {
			t.Errorf("worker version printed %q; want it to start %q (-X main.version must reach the binary)", got, want)
		}
	})
	t.Run("reads the manifests' environment", func(t *testing.T) {
		// The flags' defaults come from the variables the manifests set:
		// `run -h` shows them.
		runHelp := func(env ...string) string {
			t.Helper()
			help := exec.Command(bin, "run", "-h")
			for _, e := range os.Environ() {
				if !strings.HasPrefix(e, HTTPAddrEnv+"=") && !strings.HasPrefix(e, InstanceIDEnv+"=") {
					help.Env = append(help.Env, e)
				}
			}
			help.Env = append(help.Env, env...)
			out, err := help.CombinedOutput()
			if err != nil {
				t.Fatalf("worker run -h: %v\n%s", err, out)
			}
			return string(out)
		}
		out := runHelp(HTTPAddrEnv+"=:4242", InstanceIDEnv+"=pod-xyz")
		for _, want := range []string{`-http string`, `(default ":4242")`, `-instance-id string`, `(default "pod-xyz")`} {
			if !strings.Contains(out, want) {
				t.Errorf("worker run -h with %s and %s set lacks %q:\n%s", HTTPAddrEnv, InstanceIDEnv, want, out)
			}
		}
		if out := runHelp(); !strings.Contains(out, `(default "`+HTTPAddr+`")`) {
			t.Errorf("worker run -h: the -http default is not %s:\n%s", HTTPAddr, out)
		}
	})
	t.Run("serves the probed endpoints", func(t *testing.T) {
		// worker dev needs no services (embedded broker, memory state)
		// and serves the same endpoints as worker run.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		dev := exec.Command(bin, "dev", "-http", addr, "-duration", "60s", "-rate", "50", "-print", "0")
		dev.Dir = repoRoot(t)
		if err := dev.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = dev.Process.Kill()
			_ = dev.Wait()
		})
		client := &http.Client{Timeout: 2 * time.Second}
		for _, p := range []string{HealthzPath, ReadyzPath, MetricsPath} {
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := client.Get("http://" + addr + p)
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						if p == MetricsPath && !strings.Contains(string(body), "eddy_ready") {
							t.Errorf("GET %s: no eddy_ready metric", p)
						}
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET %s did not answer 200 within 30s (last error %v)", p, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
}

// TestDockerignoreKeepsBuildInputs checks that .dockerignore, read with the
// same library Docker uses, keeps every file the worker's build needs (the
// Go files and embedded files of every package of the module it imports,
// go.mod and go.sum) and drops what must not be sent (the git history, local
// builds).
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(rel string) bool {
		ok, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	list := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles", "./cmd/worker")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	need := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir        string
			Module     *struct{ Main bool }
			GoFiles    []string
			EmbedFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue // the standard library and other modules come from go mod download
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			need = append(need, path.Join(filepath.ToSlash(rel), f))
		}
	}
	if len(need) < 10 {
		t.Fatalf("go list found only %v: the check would prove nothing", need)
	}
	for _, f := range need {
		if excluded(f) {
			t.Errorf(".dockerignore excludes %s, which the worker's build needs", f)
		}
	}
	for _, f := range []string{".git/HEAD", "bin/worker", "deploy/k8s/base/deployment.yaml"} {
		if !excluded(f) {
			t.Errorf(".dockerignore keeps %s in the build context", f)
		}
	}
}
