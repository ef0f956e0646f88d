package codec

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	// The well-known types, for schemas registered as descriptors.
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// Config is how to reach a registry.
type Config struct {
	// URL is the registry's Confluent API, e.g. http://registry:8081 or
	// Apicurio's http://registry:8080/apis/ccompat/v7. Required.
	URL string
	// Username and Password authenticate with HTTP basic auth; Token with
	// a bearer token. At most one of the two.
	Username, Password string
	Token              string
	// TLS, when set, is used for https URLs.
	TLS *tls.Config
	// Timeout bounds each request. Default 10s.
	Timeout time.Duration
}

// Registry is a registry client with a cache of parsed schemas by ID
// (a schema's ID never changes its text). It is safe for concurrent use.
type Registry struct {
	cl      *sr.Client
	timeout time.Duration

	mu   sync.Mutex
	byID map[int]*schema
}

// schema is a registered schema, parsed.
type schema struct {
	id    int
	typ   sr.SchemaType
	avro  avro.Schema                 // Avro
	proto protoreflect.FileDescriptor // Protobuf
}

// New returns a client of the registry cfg describes. It does not
// connect.
func New(cfg Config) (*Registry, error) {
	if cfg.URL == "" {
		return nil, errors.New("schema_registry.url: required")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("schema_registry.url: %q is not an http:// or https:// URL", cfg.URL)
	}
	if cfg.Token != "" && (cfg.Username != "" || cfg.Password != "") {
		return nil, errors.New("schema_registry: token and username/password both set: give one")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS
	}
	opts := []sr.ClientOpt{
		sr.URLs(strings.TrimRight(cfg.URL, "/")),
		sr.HTTPClient(&http.Client{Transport: tr, Timeout: cfg.Timeout}),
		sr.UserAgent("eddy"),
	}
	if cfg.Username != "" || cfg.Password != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, sr.BearerToken(cfg.Token))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema_registry: %w", err)
	}
	return &Registry{cl: cl, timeout: cfg.Timeout, byID: map[int]*schema{}}, nil
}

// Ping asks the registry for its subjects: nil when it answers.
func (r *Registry) Ping(ctx context.Context) error {
	_, err := r.cl.Subjects(ctx)
	return classify(err)
}

// classify tells a registry error a retry may cure (ErrUnavailable) from
// one it answered for good (returned as is).
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		return err
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusRequestTimeout {
			return &unavailableError{err: fmt.Errorf("%s %s: %d %s", re.Method, re.URL, re.StatusCode, strings.TrimSpace(re.Error()))}
		}
		return fmt.Errorf("registry answered %d: %s", re.StatusCode, strings.TrimSpace(re.Error()))
	}
	return &unavailableError{err: err}
}

// isTimeout reports an http.Client timeout, which wraps
// context.DeadlineExceeded too.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// notFound reports a 404 answer (an unknown ID, subject or version).
func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// byID returns the schema registered under id, fetched and parsed once.
func (r *Registry) schemaByID(ctx context.Context, id int) (*schema, error) {
	r.mu.Lock()
	s := r.byID[id]
	r.mu.Unlock()
	if s != nil {
		return s, nil
	}
	got, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		if notFound(err) {
			return nil, &Error{SchemaID: id, Err: errors.New("unknown to the registry")}
		}
		return nil, classify(err)
	}
	s, err = r.parse(ctx, id, got)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.byID[id] = s
	r.mu.Unlock()
	return s, nil
}

// parse parses a registered schema and the schemas it references.
func (r *Registry) parse(ctx context.Context, id int, got sr.Schema) (*schema, error) {
	s := &schema{id: id, typ: got.Type} // avro when the answer names none
	fail := func(err error) (*schema, error) {
		if errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &Error{SchemaID: id, Err: err}
	}
	switch s.typ {
	case sr.TypeAvro:
		cache := &avro.SchemaCache{}
		if err := r.avroRefs(ctx, got.References, cache, 0); err != nil {
			return fail(err)
		}
		a, err := avro.ParseWithCache(got.Schema, "", cache)
		if err != nil {
			return fail(fmt.Errorf("parse avro schema: %w", err))
		}
		s.avro = a
	case sr.TypeProtobuf:
		files := map[string]string{}
		if err := r.protoRefs(ctx, got.References, files, 0); err != nil {
			return fail(err)
		}
		fd, err := compileProto(ctx, got.Schema, files)
		if err != nil {
			return fail(err)
		}
		s.proto = fd
	case sr.TypeJSON:
	default:
		return fail(fmt.Errorf("schema type %s is not supported", s.typ))
	}
	return s, nil
}

// maxRefDepth bounds the chain of references followed.
const maxRefDepth = 32

// avroRefs parses the referenced schemas (depth first) into cache, where
// the referring schema finds their named types.
func (r *Registry) avroRefs(ctx context.Context, refs []sr.SchemaReference, cache *avro.SchemaCache, depth int) error {
	if depth > maxRefDepth {
		return errors.New("schema references nested too deeply")
	}
	for _, ref := range refs {
		got, err := r.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			return fmt.Errorf("reference %s (subject %s version %d): %w", ref.Name, ref.Subject, ref.Version, classify(err))
		}
		if err := r.avroRefs(ctx, got.References, cache, depth+1); err != nil {
			return err
		}
		if _, err := avro.ParseWithCache(got.Schema.Schema, "", cache); err != nil {
			return fmt.Errorf("reference %s: parse avro schema: %w", ref.Name, err)
		}
	}
	return nil
}

// protoRefs fetches the referenced .proto files (by their import names).
func (r *Registry) protoRefs(ctx context.Context, refs []sr.SchemaReference, files map[string]string, depth int) error {
	if depth > maxRefDepth {
		return errors.New("schema references nested too deeply")
	}
	for _, ref := range refs {
		if _, ok := files[ref.Name]; ok {
			continue
		}
		got, err := r.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			return fmt.Errorf("reference %s (subject %s version %d): %w", ref.Name, ref.Subject, ref.Version, classify(err))
		}
		files[ref.Name] = got.Schema.Schema
		if err := r.protoRefs(ctx, got.References, files, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// mainProto names the registered .proto file among its imports.
const mainProto = "eddy-registered.proto"

// compileProto compiles a .proto file's text with its imports (files)
// and the well-known types.
func compileProto(ctx context.Context, text string, files map[string]string) (protoreflect.FileDescriptor, error) {
	all := map[string]string{mainProto: text}
	for name, src := range files {
		all[name] = src
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(all),
		}),
	}
	out, err := c.Compile(ctx, mainProto)
	if err != nil {
		// Confluent's serializers may register a schema as a base64
		// FileDescriptorProto rather than .proto text.
		if fd, derr := descriptorProto(text); derr == nil {
			return fd, nil
		}
		return nil, fmt.Errorf("parse protobuf schema: %w", err)
	}
	return out[0], nil
}

// descriptorProto reads a schema registered as a base64-encoded
// FileDescriptorProto whose imports are well-known types.
func descriptorProto(text string) (protoreflect.FileDescriptor, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, err
	}
	var fdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(b, &fdp); err != nil {
		return nil, err
	}
	return protodesc.NewFile(&fdp, protoregistry.GlobalFiles)
}
