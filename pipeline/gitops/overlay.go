// Package gitops updates the GitOps repository through pull requests: it
// edits overlay values files surgically, commits on a branch per service and
// environment, pushes, and opens or updates one pull request per branch.
package gitops

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Field is what an overlay key receives.
type Field string

const (
	FieldTag        Field = "tag"        // the immutable tag: vX.Y.Z or the SHA
	FieldDigest     Field = "digest"     // sha256:…
	FieldRepository Field = "repository" // registry/namespace/service
	FieldReference  Field = "reference"  // repository:tag@digest
)

// Fields are the known fields.
var Fields = []Field{FieldTag, FieldDigest, FieldRepository, FieldReference}

// Image is what an overlay points at.
type Image struct {
	Repository string
	Tag        string
	Digest     string
}

// Reference is repository:tag@digest (parts that are empty are left out).
func (i Image) Reference() string {
	s := i.Repository
	if i.Tag != "" {
		s += ":" + i.Tag
	}
	if i.Digest != "" {
		s += "@" + i.Digest
	}
	return s
}

// Value is the text a field gets.
func (i Image) Value(f Field) string {
	switch f {
	case FieldTag:
		return i.Tag
	case FieldDigest:
		return i.Digest
	case FieldRepository:
		return i.Repository
	}
	return i.Reference()
}

// Edit sets one key path (dotted: image.tag) to a value.
type Edit struct {
	Path  string
	Value string
}

// Errors callers branch on.
var (
	ErrNoKey       = errors.New("key not found")
	ErrUnsupported = errors.New("cannot edit this value in place")
)

// Set applies edits to a YAML document and reports whether anything changed.
// Only the bytes of each edited value change: comments, key order, quoting,
// indentation and blank lines all survive. A missing key is an error
// (ErrNoKey) unless create is set, in which case it is added to the end of
// its block mapping, with any missing parents.
func Set(doc []byte, edits []Edit, create bool) ([]byte, bool, error) {
	out := doc
	changed := false
	for _, e := range edits {
		next, ch, err := set(out, e, create)
		if err != nil {
			return doc, false, err
		}
		out, changed = next, changed || ch
	}
	return out, changed, nil
}

func set(doc []byte, e Edit, create bool) ([]byte, bool, error) {
	keys := strings.Split(e.Path, ".")
	for _, k := range keys {
		if k == "" {
			return nil, false, fmt.Errorf("key path %q: empty segment", e.Path)
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, false, fmt.Errorf("parsing YAML: %w", err)
	}
	if root.Kind == 0 { // empty document
		if !create {
			return nil, false, fmt.Errorf("setting %s: %w (the file is empty)", e.Path, ErrNoKey)
		}
		return appendLines(doc, 0, keys, e.Value), true, nil
	}
	node := root.Content[0]
	for i, k := range keys {
		if node.Kind != yaml.MappingNode {
			return nil, false, fmt.Errorf("setting %s: %s is not a mapping: %w", e.Path, strings.Join(keys[:i], "."), ErrUnsupported)
		}
		child := lookup(node, k)
		if child == nil {
			if !create {
				return nil, false, fmt.Errorf("setting %s: %w (no %q under %s)", e.Path, ErrNoKey, k, parentName(keys[:i]))
			}
			return insert(doc, node, keys[i:], e.Value, e.Path)
		}
		node = child
	}
	if node.Kind != yaml.ScalarNode {
		return nil, false, fmt.Errorf("setting %s: it holds a %s, not a value: %w", e.Path, kindName(node.Kind), ErrUnsupported)
	}
	if node.Value == e.Value && node.Tag == "!!str" {
		return doc, false, nil
	}
	start, end, err := span(doc, node)
	if err != nil {
		return nil, false, fmt.Errorf("setting %s: %w", e.Path, err)
	}
	text := render(e.Value, node.Style)
	var b bytes.Buffer
	b.Write(doc[:start])
	b.WriteString(text)
	b.Write(doc[end:])
	return b.Bytes(), true, nil
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func parentName(keys []string) string {
	if len(keys) == 0 {
		return "the document"
	}
	return strings.Join(keys, ".")
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "node"
}

// lineStart returns the byte offset where 1-based line n starts.
func lineStart(doc []byte, n int) int {
	off := 0
	for line := 1; line < n; line++ {
		i := bytes.IndexByte(doc[off:], '\n')
		if i < 0 {
			return len(doc)
		}
		off += i + 1
	}
	return off
}

// offset turns yaml.v3's 1-based line and (character) column into a byte offset.
func offset(doc []byte, line, col int) int {
	off := lineStart(doc, line)
	for c := 1; c < col && off < len(doc); c++ {
		_, size := utf8.DecodeRune(doc[off:])
		off += size
	}
	return off
}

// span finds the bytes of a scalar's text in the source, quotes included.
func span(doc []byte, n *yaml.Node) (int, int, error) {
	start := offset(doc, n.Line, n.Column)
	end := start
	switch n.Style {
	case yaml.DoubleQuotedStyle:
		end = start + 1
		for end < len(doc) && doc[end] != '"' {
			if doc[end] == '\\' {
				end++
			}
			end++
		}
		end++
	case yaml.SingleQuotedStyle:
		end = start + 1
		for end < len(doc) {
			if doc[end] == '\'' {
				if end+1 < len(doc) && doc[end+1] == '\'' {
					end += 2
					continue
				}
				break
			}
			end++
		}
		end++
	case 0, yaml.TaggedStyle:
		if strings.Contains(n.Value, "\n") {
			return 0, 0, fmt.Errorf("a multi-line value: %w", ErrUnsupported)
		}
		lineEnd := bytes.IndexByte(doc[start:], '\n')
		if lineEnd < 0 {
			lineEnd = len(doc) - start
		}
		text := string(doc[start : start+lineEnd])
		if i := strings.Index(text, " #"); i >= 0 {
			text = text[:i]
		}
		end = start + len(strings.TrimRight(text, " \t\r"))
	default:
		return 0, 0, fmt.Errorf("a block scalar (| or >): %w", ErrUnsupported)
	}
	if end > len(doc) || end <= start {
		return 0, 0, fmt.Errorf("locating the value at line %d: %w", n.Line, ErrUnsupported)
	}
	// Make sure the bytes found are the value yaml.v3 read.
	var check string
	if err := yaml.Unmarshal(doc[start:end], &check); err != nil || (check != n.Value && n.Tag == "!!str") {
		return 0, 0, fmt.Errorf("locating the value at line %d: %w", n.Line, ErrUnsupported)
	}
	return start, end, nil
}

// render writes a string value in the style the old one had, quoting a plain
// value that would otherwise read as something else (1234567 is a number,
// an all-digit SHA tag must stay a string).
func render(v string, style yaml.Style) string {
	switch style {
	case yaml.SingleQuotedStyle:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case yaml.DoubleQuotedStyle:
		return doubleQuote(v)
	}
	if plainSafe(v) {
		return v
	}
	return doubleQuote(v)
}

func plainSafe(v string) bool {
	out, err := yaml.Marshal(v)
	return err == nil && strings.TrimSuffix(string(out), "\n") == v
}

func doubleQuote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// insert adds keys (the missing tail of a path) to mapping m: after its last
// line, indented like its keys.
func insert(doc []byte, m *yaml.Node, keys []string, value, path string) ([]byte, bool, error) {
	if m.Style&yaml.FlowStyle != 0 {
		return nil, false, fmt.Errorf("setting %s: its parent is a flow mapping {…}: %w", path, ErrUnsupported)
	}
	indent := 0
	if len(m.Content) > 0 {
		indent = m.Content[0].Column - 1
	} else {
		return nil, false, fmt.Errorf("setting %s: its parent is an empty mapping: %w", path, ErrUnsupported)
	}
	last := lastLine(m)
	return appendLinesAt(doc, lineStart(doc, last+1), indent, keys, value), true, nil
}

// lastLine is the last source line a node spans.
func lastLine(n *yaml.Node) int {
	l := n.Line
	if n.Kind == yaml.ScalarNode && (n.Style == yaml.LiteralStyle || n.Style == yaml.FoldedStyle) {
		l += strings.Count(strings.TrimRight(n.Value, "\n"), "\n") + 1
	}
	for _, c := range n.Content {
		l = max(l, lastLine(c))
	}
	return l
}

func appendLines(doc []byte, indent int, keys []string, value string) []byte {
	return appendLinesAt(doc, len(doc), indent, keys, value)
}

// appendLinesAt inserts nested key lines at byte offset at.
func appendLinesAt(doc []byte, at, indent int, keys []string, value string) []byte {
	var b strings.Builder
	if at > 0 && doc[at-1] != '\n' {
		b.WriteByte('\n')
	}
	for i, k := range keys {
		b.WriteString(strings.Repeat(" ", indent+2*i))
		b.WriteString(render(k, 0))
		if i == len(keys)-1 {
			b.WriteString(": " + render(value, 0) + "\n")
		} else {
			b.WriteString(":\n")
		}
	}
	out := append([]byte{}, doc[:at]...)
	out = append(out, b.String()...)
	return append(out, doc[at:]...)
}
