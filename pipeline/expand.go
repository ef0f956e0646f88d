package pipeline

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// expander replaces ${VAR} and ${VAR:-default} in the scalar values of a
// YAML tree, in place, before the tree is decoded, so positions stay those of
// the file. It remembers values that must never be printed.
type expander struct {
	lookup func(string) (string, bool)
	errs   *errList
	redact *redactor
	subs   map[*yaml.Node][]subst // substitutions made in each scalar
}

// subst records one substitution in a scalar, in runes: the text
// [srcStart, srcEnd) of the file became [expStart, expEnd) of the value.
type subst struct {
	srcStart, srcEnd, expStart, expEnd int
}

// sourceOffset maps a rune offset in an expanded value back to the file: an
// offset inside a substituted value maps to its "${".
func sourceOffset(subs []subst, o int) int {
	delta := 0
	for _, s := range subs {
		if o < s.expStart {
			break
		}
		if o < s.expEnd {
			return s.srcStart
		}
		delta = s.srcEnd - s.expEnd
	}
	return o + delta
}

// walk expands every scalar value under n; path is n's field path.
func (x *expander) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			x.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			k.Value = restoreVars(k.Value)
			x.walk(n.Content[i+1], joinPath(path, k.Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, indexPath(path, i))
		}
	case yaml.ScalarNode:
		x.scalar(n, path)
	}
}

func (x *expander) scalar(n *yaml.Node, path string) {
	n.Value = restoreVars(n.Value)
	secretField := isSecretField(path)
	if !strings.Contains(n.Value, "$") {
		if secretField {
			x.redact.add(n.Value)
		}
		return
	}
	out, changed, ok := x.expand(n, path)
	if !ok {
		return
	}
	if secretField {
		x.redact.add(out)
	}
	if !changed {
		return
	}
	n.Value = out
	// Let a plain scalar resolve again (so "${PORT}" can become an int or
	// an empty value null); quoted scalars stay strings.
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag != "" && n.Style&yaml.TaggedStyle == 0 {
		n.Tag = ""
	}
}

// expand returns n.Value with variables replaced. "$${" is a literal "${".
// ok is false if an error was recorded.
func (x *expander) expand(n *yaml.Node, path string) (out string, changed, ok bool) {
	s := n.Value
	var b strings.Builder
	var subs []subst
	record := func(srcStart, srcEnd int, before string) {
		subs = append(subs, subst{
			srcStart: utf8.RuneCountInString(s[:srcStart]), srcEnd: utf8.RuneCountInString(s[:srcEnd]),
			expStart: utf8.RuneCountInString(before), expEnd: utf8.RuneCountInString(b.String()),
		})
	}
	defer func() {
		if ok && changed {
			x.subs[n] = subs
		}
	}()
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i
		b.WriteString(s[i:j])
		switch {
		case strings.HasPrefix(s[j:], "$${"):
			before := b.String()
			b.WriteString("${")
			record(j, j+3, before)
			changed = true
			i = j + 3
			continue
		case !strings.HasPrefix(s[j:], "${"):
			b.WriteByte('$')
			i = j + 1
			continue
		}
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			x.errs.add(n.Line, n.Column, path, "unterminated ${ in value (write $${ for a literal ${)")
			return "", false, false
		}
		body := s[j+2 : j+end]
		name, def, hasDef := strings.Cut(body, ":-")
		if !validVarName(name) {
			x.errs.add(n.Line, n.Column, path, "invalid environment variable reference ${%s}: want ${NAME} or ${NAME:-default}", body)
			return "", false, false
		}
		val, set := x.lookup(name)
		if !set || (hasDef && val == "") {
			if !hasDef {
				x.errs.add(n.Line, n.Column, path, "environment variable %s is not set (use ${%s:-default} to give a default)", name, name)
				return "", false, false
			}
			val = def
		}
		if isSecretVar(name) {
			x.redact.add(val)
		}
		before := b.String()
		b.WriteString(val)
		record(j, j+end+1, before)
		changed = true
		i = j + end + 1
	}
	return b.String(), changed, true
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// isSecretField reports whether a field's value must never be printed:
// passwords, DSNs, tokens, secrets and "*_key"-style credentials.
func isSecretField(path string) bool {
	last := path
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		last = path[i+1:]
	}
	last = strings.ToLower(last)
	switch last {
	case "password", "passwd", "dsn", "secret", "token", "passphrase", "credentials", "private_key", "api_key", "apikey":
		return true
	}
	for _, suffix := range []string{"_password", "_secret", "_token", "_dsn", "_api_key", "_private_key", "_credentials"} {
		if strings.HasSuffix(last, suffix) {
			return true
		}
	}
	return false
}

// isSecretVar reports whether an environment variable's name suggests a
// secret, so its value is redacted wherever it would be printed.
func isSecretVar(name string) bool {
	u := strings.ToUpper(name)
	for _, w := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "DSN", "CREDENTIAL", "PRIVATE", "API_KEY", "APIKEY", "AUTH"} {
		if strings.Contains(u, w) {
			return true
		}
	}
	return strings.HasSuffix(u, "_KEY") || u == "KEY"
}

// redactor replaces known secret values in messages. Values shorter than
// minSecret are not searched for (they would garble messages); fields that
// hold secrets never print their own value anyway.
type redactor struct {
	secrets []string
}

const minSecret = 4

func (r *redactor) add(s string) {
	if len(s) < minSecret {
		return
	}
	for _, have := range r.secrets {
		if have == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
	// Redact longer secrets first so a secret containing another is
	// replaced whole.
	for i := len(r.secrets) - 1; i > 0 && len(r.secrets[i]) > len(r.secrets[i-1]); i-- {
		r.secrets[i], r.secrets[i-1] = r.secrets[i-1], r.secrets[i]
	}
}

func (r *redactor) apply(msg string) string {
	for _, s := range r.secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// Plain YAML scalars cannot hold '{' and '}' inside flow collections, so
// "brokers: [${KAFKA_BROKERS}]" would not parse. Before parsing, the braces
// of each "${...}" (on one line) are swapped for two private-use characters,
// which YAML accepts anywhere and which count as one column each, so
// positions do not move; restoreVars swaps them back in every scalar.
const (
	openMark  = '\uE000'
	closeMark = '\uE001'
)

func protectVars(data []byte) []byte {
	if !bytes.Contains(data, []byte("${")) {
		return data
	}
	out := make([]byte, 0, len(data)+32)
	for i := 0; i < len(data); {
		if data[i] == '$' && i+1 < len(data) && data[i+1] == '{' {
			rest := data[i+2:]
			if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
				rest = rest[:nl]
			}
			// Only "${NAME}" and "${NAME:-default}" are protected.
			name := 0
			for name < len(rest) && (rest[name] == '_' || rest[name] >= 'A' && rest[name] <= 'Z' ||
				rest[name] >= 'a' && rest[name] <= 'z' || rest[name] >= '0' && rest[name] <= '9') {
				name++
			}
			end := -1
			switch {
			case name < len(rest) && rest[name] == '}':
				end = name
			case bytes.HasPrefix(rest[name:], []byte(":-")):
				end = bytes.IndexByte(rest, '}')
			}
			if end >= 0 {
				out = append(out, '$')
				out = utf8.AppendRune(out, openMark)
				out = append(out, rest[:end]...)
				out = utf8.AppendRune(out, closeMark)
				i += 2 + end + 1
				continue
			}
		}
		out = append(out, data[i])
		i++
	}
	return out
}

func restoreVars(s string) string {
	if !strings.ContainsRune(s, openMark) {
		return s
	}
	return strings.NewReplacer(string(openMark), "{", string(closeMark), "}").Replace(s)
}
