package ingest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/eddy-streams/eddy/pipeline"
)

// rec is what a test expects of one record: its line, its raw text, its
// value (good) or a piece of its error (bad).
type rec struct {
	line  int
	raw   string
	value string // good records
	err   string // bad records: a substring of the error
}

// decodeAll reads every record of in, and the error that ended it
// (nil at io.EOF).
func decodeAll(t *testing.T, r io.Reader, f Format, opts CSVOptions) ([]Record, error) {
	t.Helper()
	d := NewDecoder(r, f, opts)
	var out []Record
	for {
		r, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

func check(t *testing.T, got []Record, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		for _, g := range got {
			t.Logf("got line %d raw %q value %q err %v", g.Line, g.Raw, g.Value, g.Err)
		}
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || string(g.Raw) != w.raw {
			t.Errorf("record %d: line %d raw %q, want line %d raw %q", i, g.Line, g.Raw, w.line, w.raw)
		}
		switch {
		case w.err == "" && g.Err != nil:
			t.Errorf("record %d (line %d): unexpected error %v", i, g.Line, g.Err)
		case w.err == "" && string(g.Value) != w.value:
			t.Errorf("record %d (line %d): value %s, want %s", i, g.Line, g.Value, w.value)
		case w.err == "" && g.Event == nil:
			t.Errorf("record %d (line %d): no event", i, g.Line)
		case w.err != "" && (g.Err == nil || !strings.Contains(g.Err.Error(), w.err)):
			t.Errorf("record %d (line %d): error %v, want one with %q", i, g.Line, g.Err, w.err)
		case w.err != "" && (g.Value != nil || g.Event != nil):
			t.Errorf("record %d (line %d): bad record with a value %q or an event", i, g.Line, g.Value)
		}
	}
}

func TestDecodeJSONLines(t *testing.T) {
	long := `{"k":"` + strings.Repeat("x", 200_000) + `"}` // longer than the reader's buffer
	cases := []struct {
		name string
		in   string
		want []rec
	}{
		{"good lines, no final newline", "{\"a\":1}\n{\"b\":2}", []rec{
			{line: 1, raw: `{"a":1}`, value: `{"a":1}`}, {line: 2, raw: `{"b":2}`, value: `{"b":2}`}}},
		{"bad lines keep their numbers, blank lines count", "{\"a\":1}\n\nnot json\n   \n[1,2]\n{\"a\":\n\"s\"\n{\"ok\":true}\n", []rec{
			{line: 1, raw: `{"a":1}`, value: `{"a":1}`},
			{line: 3, raw: "not json", err: "invalid JSON"},
			{line: 5, raw: "[1,2]", err: "not a JSON object"},
			{line: 6, raw: `{"a":`, err: "invalid JSON"},
			{line: 7, raw: `"s"`, err: "not a JSON object"},
			{line: 8, raw: `{"ok":true}`, value: `{"ok":true}`}}},
		{"CRLF line ends and a byte order mark", "\ufeff{\"a\":1}\r\n{\"b\":2}\r\n", []rec{
			{line: 1, raw: `{"a":1}`, value: `{"a":1}`}, {line: 2, raw: `{"b":2}`, value: `{"b":2}`}}},
		{"a line longer than the buffer", "{}\n" + long + "\n{}", []rec{
			{line: 1, raw: "{}", value: "{}"}, {line: 2, raw: long, value: long}, {line: 3, raw: "{}", value: "{}"}}},
		{"trailing data after the object", `{"a":1} {"b":2}`, []rec{{line: 1, raw: `{"a":1} {"b":2}`, err: "invalid JSON at byte 9: invalid character '{' after top-level value"}}},
		{"empty input", "", nil},
		{"only blank lines", "\n\n \r\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One byte per read: line assembly must not depend on reads.
			got, err := decodeAll(t, iotest.OneByteReader(strings.NewReader(c.in)), JSON, CSVOptions{})
			if err != nil {
				t.Fatal(err)
			}
			check(t, got, c.want)
		})
	}
}

func TestDecodeJSONKeepsRecordsApart(t *testing.T) {
	// Each record's Raw and Value must survive the next Next (the producer
	// holds them until Kafka acknowledges).
	got, err := decodeAll(t, strings.NewReader("{\"a\":1}\n{\"b\":2}\n"), JSON, CSVOptions{})
	if err != nil || len(got) != 2 || string(got[0].Value) != `{"a":1}` || got[0].Event["a"] != int64(1) {
		t.Fatalf("records %+v, err %v", got, err)
	}
}

func TestDecodeCSV(t *testing.T) {
	cases := []struct {
		name string
		in   string
		opts CSVOptions
		want []rec
	}{
		{"rows become objects of strings", "user,qty\nu1,3\nu2,x\n", CSVOptions{}, []rec{
			{line: 2, raw: "u1,3", value: `{"qty":"3","user":"u1"}`},
			{line: 3, raw: "u2,x", value: `{"qty":"x","user":"u2"}`}}},
		{"wrong field counts are bad rows, numbered by their line", "a,b\n1,2\n1,2,3\n\n4\n5,6", CSVOptions{}, []rec{
			{line: 2, raw: "1,2", value: `{"a":"1","b":"2"}`},
			{line: 3, raw: "1,2,3", err: "CSV row has 3 fields, the header 2"},
			{line: 5, raw: "4", err: "CSV row has 1 fields, the header 2"},
			{line: 6, raw: "5,6", value: `{"a":"5","b":"6"}`}}},
		{"a quoted field spanning lines starts the record's line", "a,b\n\"x\ny\",1\nz,2\r\n", CSVOptions{}, []rec{
			{line: 2, raw: "\"x\ny\",1", value: `{"a":"x\ny","b":"1"}`},
			{line: 4, raw: "z,2", value: `{"a":"z","b":"2"}`}}},
		{"a bare quote is a bad row, the next one is read", "a,b\nx\"y,1\nz,2\n", CSVOptions{}, []rec{
			{line: 2, raw: "x\"y,1", err: "bare \" in non-quoted-field"},
			{line: 3, raw: "z,2", value: `{"a":"z","b":"2"}`}}},
		{"typed columns, empty cells null", "id,qty,price,gift,note\n1,3,2.5,true,hi\n2,,,,\n3,x,1,false,\n4,1,1e400,true,\n", CSVOptions{
			Types: map[string]Type{"qty": Int, "price": Double, "gift": Bool, "note": String}}, []rec{
			{line: 2, raw: "1,3,2.5,true,hi", value: `{"gift":true,"id":"1","note":"hi","price":2.5,"qty":3}`},
			{line: 3, raw: "2,,,,", value: `{"gift":null,"id":"2","note":"","price":null,"qty":null}`},
			{line: 4, raw: "3,x,1,false,", err: `column qty: "x" is not an int`},
			{line: 5, raw: "4,1,1e400,true,", err: `column price: "1e400" is not a double`}}},
		{"a semicolon delimiter and a byte order mark", "\ufeffa;b\n1;2\n", CSVOptions{Comma: ';'}, []rec{
			{line: 2, raw: "1;2", value: `{"a":"1","b":"2"}`}}},
		{"header only", "a,b\n", CSVOptions{}, nil},
		{"empty", "", CSVOptions{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeAll(t, iotest.OneByteReader(strings.NewReader(c.in)), CSV, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			check(t, got, c.want)
		})
	}
}

func TestDecodeCSVManyRowsRawText(t *testing.T) {
	// Enough rows for the capture buffer to be compacted many times: every
	// row's raw text must still be its own.
	var in bytes.Buffer
	in.WriteString("n,pad\n")
	const rows = 20_000
	for i := range rows {
		in.WriteString(strings.Repeat("7", i%13+1) + ",\"" + strings.Repeat("p", i%50) + "\"\n")
	}
	got, err := decodeAll(t, &in, CSV, CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != rows {
		t.Fatalf("%d rows, want %d", len(got), rows)
	}
	for i, r := range got {
		want := strings.Repeat("7", i%13+1) + ",\"" + strings.Repeat("p", i%50) + "\""
		if string(r.Raw) != want || r.Line != i+2 || r.Err != nil {
			t.Fatalf("row %d: line %d raw %q err %v, want line %d raw %q", i, r.Line, r.Raw, r.Err, i+2, want)
		}
	}
}

func TestDecodeCSVBadHeader(t *testing.T) {
	for _, c := range []struct {
		name, in string
		opts     CSVOptions
		line     int
		err      string
	}{
		{"duplicate column", "a,b,a\n1,2,3\n", CSVOptions{}, 1, `columns 1 and 3 are both named "a"`},
		{"empty column name", "a,,c\n", CSVOptions{}, 1, "column 2 has no name"},
		{"typed column missing", "a,b\n1,2\n", CSVOptions{Types: map[string]Type{"qty": Int}}, 1, `no column "qty" (typed by -csv-types); the columns are a, b`},
		{"unterminated quote", "\"a,b\n", CSVOptions{}, 1, "invalid CSV header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeAll(t, strings.NewReader(c.in), CSV, c.opts)
			var le *LineError
			if !errors.As(err, &le) || le.Line != c.line || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want a LineError at line %d with %q", err, c.line, c.err)
			}
			if len(got) != 0 {
				t.Errorf("%d records after a bad header", len(got))
			}
		})
	}
}

func TestDecodeReadError(t *testing.T) {
	broken := errors.New("disk on fire")
	for _, f := range []Format{JSON, CSV} {
		// A line cut by the error is no record.
		in := io.MultiReader(strings.NewReader("{\"a\":1}\n{\"cut"), iotest.ErrReader(broken))
		if f == CSV {
			in = io.MultiReader(strings.NewReader("a\n1\n"), iotest.ErrReader(broken))
		}
		got, err := decodeAll(t, in, f, CSVOptions{})
		if !errors.Is(err, broken) {
			t.Errorf("%s: error %v, want the read error", f, err)
		}
		if len(got) != 1 || got[0].Err != nil {
			t.Errorf("%s: records before the error: %+v", f, got)
		}
	}
}

func TestParseTypes(t *testing.T) {
	got, err := ParseTypes("qty:int, price:double,gift:bool,name:string")
	if err != nil || len(got) != 4 || got["qty"] != Int || got["price"] != Double || got["gift"] != Bool || got["name"] != String {
		t.Fatalf("ParseTypes = %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"qty":           `"qty" is not column:type`,
		"qty:integer":   `column "qty": "integer" is not a type`,
		":int":          `":int" is not column:type`,
		"a:int,a:bool":  `column "a" is typed twice`,
		"qty:int,":      `"" is not column:type`,
		"price:float64": `"float64" is not a type: want string, int, double or bool`,
	} {
		if _, err := ParseTypes(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTypes(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestIDs(t *testing.T) {
	if got := ID("orders.jsonl", 17); got != "orders.jsonl:17" {
		t.Errorf("ID = %q", got)
	}
	if ID("a", 1) == ID("a", 2) || ID("a:1", 2) == ID("a", 12) {
		t.Error("distinct records share an ID")
	}
	a, b := RunName("stdin"), RunName("stdin")
	if a == b || !strings.HasPrefix(a, "stdin-") || len(a) != len("stdin-")+16 {
		t.Errorf("RunName: %q and %q", a, b)
	}
	src, err := RequestSource("3f1c-9a")
	if err != nil || src != "http:3f1c-9a" {
		t.Errorf("RequestSource(key) = %q, %v", src, err)
	}
	if again, _ := RequestSource("3f1c-9a"); again != src {
		t.Error("the same Idempotency-Key gave another source")
	}
	x, _ := RequestSource("")
	y, _ := RequestSource("")
	if x == y || !strings.HasPrefix(x, "http-") {
		t.Errorf("requests without a key: %q and %q", x, y)
	}
	for _, bad := range []string{"has space", "tab\t", "é", strings.Repeat("k", MaxIdempotencyKey+1)} {
		if _, err := RequestSource(bad); err == nil || !strings.Contains(err.Error(), "Idempotency-Key") {
			t.Errorf("RequestSource(%q) = %v, want an error naming the header", bad, err)
		}
	}
}

func TestKeyExpressions(t *testing.T) {
	ev := map[string]any{"user": "u1", "n": int64(7), "nested": map[string]any{"id": "x"}, "f": 1.5}
	for expr, want := range map[string]string{
		"event.user":                         "u1",
		"event.n":                            "7",
		"event.nested.id":                    "x",
		`event.user + "/" + string(event.n)`: "u1/7",
		`event.?missing.orValue("none")`:     "none",
	} {
		k, err := CompileKey(expr)
		if err != nil {
			t.Errorf("CompileKey(%q): %v", expr, err)
			continue
		}
		got, err := k.Eval(&pipeline.Vars{Event: ev})
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", expr, got, err, want)
		}
	}
	for expr, want := range map[string]string{
		"":            "empty expression",
		"event.":      "Syntax error",
		"1.5":         "has type double, want string or int",
		"event.a ==":  "Syntax error",
		"nosuchvar.x": "undeclared reference",
	} {
		if _, err := CompileKey(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileKey(%q) = %v, want an error with %q", expr, err, want)
		}
	}
	// Errors at evaluation name the expression.
	for expr, want := range map[string]string{
		"event.missing": "no such key: missing",
		"event.f":       "result is double, want string or int",
	} {
		k, err := CompileKey(expr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Eval(&pipeline.Vars{Event: ev})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "key "+expr) {
			t.Errorf("%s: error %v, want one naming the key and %q", expr, err, want)
		}
	}
}

func TestRejectsFormat(t *testing.T) {
	var buf bytes.Buffer
	r := NewRejects(&buf)
	_ = r.Write("orders.jsonl", &Record{Line: 3, Raw: []byte("not json"), Err: errors.New("invalid JSON: x")})
	_ = r.Write("orders.csv", &Record{Line: 7, Raw: []byte("\"a\nb\",1,2"), Err: errors.New("two\nlines")})
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "# orders.jsonl:3: invalid JSON: x\nnot json\n# orders.csv:7: two lines\n\"a\nb\",1,2\n"
	if buf.String() != want {
		t.Errorf("reject file:\n%s\nwant:\n%s", buf.String(), want)
	}
	var none *Rejects
	if none.Write("x", &Record{}) != nil || none.Flush() != nil {
		t.Error("a nil Rejects must do nothing")
	}
}
