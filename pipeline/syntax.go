package pipeline

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml4 "go.yaml.in/yaml/v4"
)

// YAML syntax errors.
//
// yaml.v3 reports a syntax error with a line and no column, and for a
// parser error the line where the enclosing block starts rather than the
// mistake's (a key indented wrongly on line 6 is reported on line 5).
// go.yaml.in/yaml/v4 is the same libyaml port, accepting and rejecting the
// same files with the same messages, and its errors keep both of libyaml's
// marks: where the problem is and where its context (the block, the
// quoted scalar) starts. Its error types are internal, so syntaxError reads
// their exported fields by reflection; when they are not there, or the two
// parsers disagree, it keeps yaml.v3's line.

// syntaxError locates the yaml.v3 error err in src (the file with its
// variables protected, as parsed) and says what is wrong: a 1-based line
// and column (0 when unknown) and a message.
func syntaxError(src []byte, err error) (line, col int, msg string) {
	line, msg = yamlErrorLine(err.Error())
	var n yaml4.Node
	e, ok := readYAMLError(yaml4.Unmarshal(src, &n))
	if !ok || e.msg != msg {
		return line, 0, msg
	}
	text := []rune(strings.TrimPrefix(string(src), "\uFEFF"))
	line, col = e.problem.position(text)
	switch {
	case e.context == "":
	case atEnd(text, e.problem.index):
		// Nothing to point at where the file ends: point at what is
		// left open there.
		line, col = e.contextAt.position(text)
		msg += " " + e.context + " that starts here"
		if !strings.Contains(msg, "end of stream") {
			msg += " (the file ends first)"
		}
	case e.contextAt.index != e.problem.index:
		l, c := e.contextAt.position(text)
		msg += fmt.Sprintf(" (%s at line %d, column %d)", e.context, l, c)
	}
	if i := e.problem.index; i < len(text) && text[i] == '\t' {
		msg += " (a tab: YAML indents with spaces)"
	}
	return line, col, msg
}

// yamlError is what syntaxError reads from a yaml/v4 syntax error.
type yamlError struct {
	msg, context       string
	problem, contextAt yamlMark
}

// yamlMark is a libyaml mark: index counts characters from the start of
// the input; line and column are 0- or 1-based depending on who made it.
type yamlMark struct{ index, line, column int }

// position is the 1-based line and column of m in text.
func (m yamlMark) position(text []rune) (line, col int) {
	if m.index == 0 && m.line > 0 {
		// The composer's errors (an unknown anchor) carry a node's 1-based
		// line and column instead of an index.
		return m.line, m.column
	}
	line, col = 1, 1
	for i := 0; i < m.index && i < len(text); i++ {
		if text[i] == '\n' || text[i] == '\r' && (i+1 == len(text) || text[i+1] != '\n') {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// atEnd reports whether only white space follows index in text.
func atEnd(text []rune, index int) bool {
	for _, r := range text[min(index, len(text)):] {
		if !strings.ContainsRune(" \t\r\n", r) {
			return false
		}
	}
	return true
}

// readYAMLError reads the fields of a yaml/v4 ParserError or ScannerError.
func readYAMLError(err error) (yamlError, bool) {
	if err == nil {
		return yamlError{}, false
	}
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return yamlError{}, false
	}
	str := func(name string) (string, bool) {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.String {
			return "", false
		}
		return f.String(), true
	}
	mark := func(name string) (yamlMark, bool) {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Struct {
			return yamlMark{}, false
		}
		var m yamlMark
		for name, p := range map[string]*int{"Index": &m.index, "Line": &m.line, "Column": &m.column} {
			g := f.FieldByName(name)
			if !g.IsValid() || !g.CanInt() {
				return yamlMark{}, false
			}
			*p = int(g.Int())
		}
		return m, true
	}
	var e yamlError
	var ok [4]bool
	e.msg, ok[0] = str("Message")
	e.context, ok[1] = str("ContextMessage")
	e.problem, ok[2] = mark("Mark")
	e.contextAt, ok[3] = mark("ContextMark")
	return e, ok == [4]bool{true, true, true, true} && e.msg != ""
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlParserErrors are the messages of yaml.v3's parser (as opposed to its
// scanner) errors: yaml.v3 reports their line 0-based, and leaves it out on
// the first line.
var yamlParserErrors = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

// yamlErrorLine splits a yaml.v3 syntax error into a 1-based line (0 if
// unknown) and the message.
func yamlErrorLine(msg string) (int, string) {
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	for _, pe := range yamlParserErrors {
		if msg == pe {
			line++
			break
		}
	}
	return line, msg
}
