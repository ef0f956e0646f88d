package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/pipeline"
)

// The paths the HTTP handler serves.
const (
	PathIngest = "/ingest"  // POST: JSON lines or CSV
	PathHealth = "/healthz" // GET: 200 while the process runs
)

// HTTPConfig configures the HTTP handler.
type HTTPConfig struct {
	// Key computes record keys; nil: records without a key.
	Key *Key
	// Format is the body's format when neither the format query
	// parameter nor the Content-Type says. Default JSON.
	Format Format
	// CSV tunes the CSV format.
	CSV CSVOptions
	// Counters count the records read and rejected (the Publisher's
	// counters, usually). Required.
	Counters *Counters
	// Rejects receives the bad records; nil: none written.
	Rejects *Rejects
	// AckTimeout bounds the wait for Kafka's acknowledgements of a
	// request's records (and for the producer to take them): 503 after
	// that. Default 30s.
	AckTimeout time.Duration
	// MaxBody is the largest body accepted, in bytes: 413 beyond. Default
	// 32 MiB.
	MaxBody int64
	// MaxRejects is how many bad lines a 400 response lists (it counts
	// them all). Default 100.
	MaxRejects int
}

// Handler serves POST /ingest and GET /healthz; see NewHandler.
type Handler struct {
	pub *Publisher
	cfg HTTPConfig
}

// NewHandler returns the handler of `worker ingest -http`. POST /ingest
// reads a body of JSON lines or CSV (the format query parameter, json or
// csv, else the Content-Type: text/csv is CSV, application/x-ndjson,
// application/jsonl and application/json are JSON lines; none or
// text/plain: cfg.Format) and answers:
//
//   - 200 {"lines", "records", "acked"} once every record of the body is
//     acknowledged by Kafka;
//   - 400 {"error", "lines", "rejected": [{"line", "error"}]} when any line
//     is bad: nothing of the body is published;
//   - 503 {"error", "lines", "records", "acked", "failed"} when Kafka did
//     not take them all within cfg.AckTimeout (some may have been
//     published: send the request again with the same Idempotency-Key);
//   - 405, 413, 415 for a wrong method, too large a body, an unknown
//     Content-Type.
//
// Every record's eddy-id is RequestSource(Idempotency-Key header) and its
// line: the same for the same request sent again with the same key.
// Requests are served concurrently; each request's records are sent in
// body order.
func NewHandler(p *Publisher, cfg HTTPConfig) *Handler {
	if cfg.Format == "" {
		cfg.Format = JSON
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 30 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 32 << 20
	}
	if cfg.MaxRejects <= 0 {
		cfg.MaxRejects = 100
	}
	if cfg.Counters == nil {
		cfg.Counters = &Counters{}
	}
	return &Handler{pub: p, cfg: cfg}
}

// Response is the JSON body of every answer to POST /ingest.
type Response struct {
	Error    string     `json:"error,omitempty"`
	Lines    int        `json:"lines"`              // records in the body, good and bad
	Records  int        `json:"records"`            // Kafka records sent (multicast: one per partition)
	Acked    int        `json:"acked"`              // of them acknowledged
	Failed   int        `json:"failed,omitempty"`   // of them not delivered
	Rejected []LineInfo `json:"rejected,omitempty"` // the bad lines (at most HTTPConfig.MaxRejects)
	// BadLines counts every bad line, also those not listed.
	BadLines int `json:"bad_lines,omitempty"`
}

// LineInfo names a bad line of a body.
type LineInfo struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathHealth:
		fmt.Fprintln(w, "ok")
		return
	case PathIngest:
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, &Response{Error: "POST a body of JSON lines or CSV"})
		return
	}
	format, err := h.format(r)
	if err != nil {
		reply(w, http.StatusUnsupportedMediaType, &Response{Error: err.Error()})
		return
	}
	source, err := RequestSource(r.Header.Get("Idempotency-Key"))
	if err != nil {
		reply(w, http.StatusBadRequest, &Response{Error: err.Error()})
		return
	}

	// Read and check the whole body first: a request with a bad line
	// publishes nothing.
	type good struct {
		line       int
		key, value []byte
	}
	var (
		recs []good
		resp Response
		vars pipeline.Vars
	)
	dec := NewDecoder(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody), format, h.cfg.CSV)
	for {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				reply(w, http.StatusRequestEntityTooLarge, &Response{Error: fmt.Sprintf("body larger than %d bytes", tooLarge.Limit)})
				return
			}
			var le *LineError
			if errors.As(err, &le) {
				reply(w, http.StatusBadRequest, &Response{Error: err.Error(), Lines: resp.Lines})
				return
			}
			reply(w, http.StatusBadRequest, &Response{Error: "reading the body: " + err.Error()})
			return
		}
		resp.Lines++
		h.cfg.Counters.Read.Add(1)
		var key []byte
		if rec.Err == nil && h.cfg.Key != nil {
			vars.Event = rec.Event
			k, err := h.cfg.Key.Eval(&vars)
			if err != nil {
				rec.Err = err
			}
			key = []byte(k)
		}
		if rec.Err == nil {
			rec.Err = h.pub.checkSize(key, ID(source, rec.Line), rec.Value)
		}
		if rec.Err != nil {
			h.cfg.Counters.Rejected.Add(1)
			resp.BadLines++
			if len(resp.Rejected) < h.cfg.MaxRejects {
				resp.Rejected = append(resp.Rejected, LineInfo{Line: rec.Line, Error: rec.Err.Error()})
			}
			_ = h.cfg.Rejects.Write(source, &rec)
			continue
		}
		recs = append(recs, good{line: rec.Line, key: key, value: rec.Value})
	}
	if resp.BadLines > 0 {
		resp.Error = fmt.Sprintf("%d bad line(s): nothing was published", resp.BadLines)
		reply(w, http.StatusBadRequest, &resp)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.AckTimeout)
	defer cancel()
	b := NewBatch()
	var sendErr error
	for _, g := range recs {
		if sendErr = h.pub.Send(ctx, b, g.line, g.key, ID(source, g.line), g.value); sendErr != nil {
			break
		}
	}
	b.Seal()
	waitErr := b.Wait(ctx)
	c := b.Counts()
	resp.Records, resp.Acked, resp.Failed = c.Acked+c.Failed+c.Pending, c.Acked, c.Failed
	switch {
	case r.Context().Err() != nil:
		return // the client is gone
	case c.Failed > 0:
		resp.Error = "not delivered: " + c.FirstErr.Error()
	case sendErr != nil || waitErr != nil:
		resp.Error = fmt.Sprintf("kafka did not acknowledge every record within %s", h.cfg.AckTimeout)
		if errors.Is(sendErr, ErrClosed) {
			resp.Error = "shutting down"
		}
	default:
		reply(w, http.StatusOK, &resp)
		return
	}
	resp.Error += "; some records may have been published: send the request again with the same Idempotency-Key"
	w.Header().Set("Retry-After", "1")
	reply(w, http.StatusServiceUnavailable, &resp)
}

// format chooses the body's format.
func (h *Handler) format(r *http.Request) (Format, error) {
	if q := r.URL.Query().Get("format"); q != "" {
		f, err := ParseFormat(q)
		if err != nil {
			return "", fmt.Errorf("format query parameter: %w", err)
		}
		return f, nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return h.cfg.Format, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("Content-Type %q: %v", ct, err)
	}
	switch strings.ToLower(mt) {
	case "text/csv", "application/csv":
		return CSV, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
		"application/jsonlines", "application/json":
		return JSON, nil
	case "text/plain", "application/octet-stream":
		return h.cfg.Format, nil
	}
	return "", fmt.Errorf("Content-Type %q: want text/csv, application/x-ndjson (JSON lines) or the format query parameter", mt)
}

func reply(w http.ResponseWriter, status int, resp *Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
