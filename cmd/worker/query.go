package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/eddy-streams/eddy/processor"
)

// Query endpoints (`worker run -query`): read-only, JSON, on the port of
// /metrics. Any worker answers for any key: state is read from the shared
// store (processor.StateReader), not from the worker's own partitions.
const (
	PathState  = "/v1/state"  // GET: the steps and tables; /v1/state/<step>/<key>[?at=RFC 3339]: an aggregate key's windows
	PathTables = "/v1/tables" // GET /v1/tables/<table>/<key>: a table's row
)

// queryTimeout bounds a query's store reads.
const queryTimeout = 5 * time.Second

// windowJSON is one window of a /v1/state answer.
type windowJSON struct {
	Start     time.Time      `json:"window_start"`
	End       time.Time      `json:"window_end"`
	Closed    bool           `json:"closed"`
	Partition string         `json:"partition"`
	Result    map[string]any `json:"result"`
}

// readers finds the StateReader of a worker by what it answers for.
type readers func() ([]*processor.StateReader, error)

// handleQueries adds the query endpoints to mux.
func handleQueries(mux *http.ServeMux, rs readers) {
	mux.HandleFunc("GET "+PathState, func(w http.ResponseWriter, r *http.Request) {
		all, err := rs()
		if err != nil {
			replyErr(w, http.StatusServiceUnavailable, err)
			return
		}
		var steps, tables []string
		for _, q := range all {
			steps = append(steps, q.Steps()...)
			tables = append(tables, q.Tables()...)
		}
		sort.Strings(steps)
		sort.Strings(tables)
		replyJSON(w, http.StatusOK, map[string]any{"steps": nonNil(steps), "tables": nonNil(tables)})
	})
	mux.HandleFunc("GET "+PathState+"/{step}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		step, key := r.PathValue("step"), r.PathValue("key")
		var at time.Time
		if s := r.URL.Query().Get("at"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				replyErr(w, http.StatusBadRequest, fmt.Errorf("at: %q is not an RFC 3339 time (2024-01-01T00:00:00Z)", s))
				return
			}
			at = t
		}
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		q, err := readerFor(rs, func(q *processor.StateReader) bool { return contains(q.Steps(), step) })
		if err != nil {
			replyErr(w, statusOf(err), err)
			return
		}
		ks, err := q.Windows(ctx, step, key, at)
		if err != nil {
			replyErr(w, statusOf(err), err)
			return
		}
		replyJSON(w, http.StatusOK, keyStateJSON(ks))
	})
	mux.HandleFunc("GET "+PathTables+"/{table}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		table, key := r.PathValue("table"), r.PathValue("key")
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		q, err := readerFor(rs, func(q *processor.StateReader) bool { return contains(q.Tables(), table) })
		if err != nil {
			replyErr(w, statusOf(err), err)
			return
		}
		row, err := q.Row(ctx, table, key)
		if err != nil {
			replyErr(w, statusOf(err), err)
			return
		}
		replyJSON(w, http.StatusOK, map[string]any{"table": table, "key": key, "row": row})
	})
}

// keyStateJSON is a key's windows as the query endpoints and worker state
// get -json print them.
func keyStateJSON(ks *processor.KeyState) map[string]any {
	out := make([]windowJSON, len(ks.Windows))
	for i, win := range ks.Windows {
		out[i] = windowJSON{Start: win.Start, End: win.End, Closed: win.Closed, Partition: win.Partition.String(), Result: win.Result}
	}
	wms := map[string]time.Time{}
	for p, t := range ks.Watermark {
		wms[p.String()] = t
	}
	return map[string]any{"step": ks.Step, "key": ks.Key, "windows": out, "watermarks": wms}
}

// readerFor returns the first reader that has what match looks for, or,
// when none has, the first (whose error then names what it has).
func readerFor(rs readers, match func(*processor.StateReader) bool) (*processor.StateReader, error) {
	all, err := rs()
	if err != nil {
		return nil, err
	}
	for _, q := range all {
		if match(q) {
			return q, nil
		}
	}
	if len(all) == 0 {
		return nil, errors.New("no pipeline to query")
	}
	return all[0], nil
}

// statusOf maps a query error to its HTTP status: 404 for an unknown step,
// table or key, 503 for the rest (the store is down, the worker not yet
// connected).
func statusOf(err error) int {
	switch {
	case errors.Is(err, processor.ErrUnknown), errors.Is(err, processor.ErrNotFound):
		return http.StatusNotFound
	default:
		return http.StatusServiceUnavailable
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func replyJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func replyErr(w http.ResponseWriter, status int, err error) {
	replyJSON(w, status, map[string]any{"error": err.Error(), "status": status})
}
