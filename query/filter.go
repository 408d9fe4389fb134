package query

import (
	"strconv"
	"strings"
)

// Expr is a parsed filter. Make one with Parse; the zero Expr is no filter
// and matches every live item. An Expr is immutable and safe for concurrent
// use.
type Expr struct {
	root  node
	canon string // format(root)
}

// String returns the filter's canonical form: keywords upper-case, single
// spaces, only the parentheses the structure needs, names quoted only when
// they must be, numbers in shortest form. It parses back to an equal Expr.
// The zero Expr's is "".
func (e Expr) String() string { return e.canon }

// node is one node of the syntax tree: *cmpNode, *inNode, *notNode,
// *andNode or *orNode. Values are string, float64 (finite), bool or nil
// (null).
type node interface{}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opContains
)

var opText = [...]string{opEq: "=", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">=", opContains: "CONTAINS"}

// cmpNode is attr op val. The parser admits <, <=, >, >= with numbers only,
// and CONTAINS with no null.
type cmpNode struct {
	attr string
	op   cmpOp
	val  any
}

// inNode is attr IN (vals...) or, negated, attr NOT IN (vals...).
type inNode struct {
	attr    string
	vals    []any // at least one
	negated bool
}

type notNode struct{ x node }

type andNode struct{ xs []node } // at least two

type orNode struct{ xs []node } // at least two

// format returns the canonical form of n.
func format(n node) string {
	var b strings.Builder
	writeNode(&b, n)
	return b.String()
}

func writeNode(b *strings.Builder, n node) {
	switch n := n.(type) {
	case *cmpNode:
		writeName(b, n.attr)
		b.WriteString(" " + opText[n.op] + " ")
		writeValue(b, n.val)
	case *inNode:
		writeName(b, n.attr)
		if n.negated {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		for i, v := range n.vals {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, v)
		}
		b.WriteByte(')')
	case *notNode:
		b.WriteString("NOT ")
		writeOperand(b, n.x, func(x node) bool { _, and := x.(*andNode); _, or := x.(*orNode); return and || or })
	case *andNode:
		for i, x := range n.xs {
			if i > 0 {
				b.WriteString(" AND ")
			}
			// An AND inside an AND came from parentheses: keep them, so
			// that the canonical form parses back to the same tree.
			writeOperand(b, x, func(x node) bool { _, and := x.(*andNode); _, or := x.(*orNode); return and || or })
		}
	case *orNode:
		for i, x := range n.xs {
			if i > 0 {
				b.WriteString(" OR ")
			}
			writeOperand(b, x, func(x node) bool { _, or := x.(*orNode); return or })
		}
	}
}

func writeOperand(b *strings.Builder, x node, parens func(node) bool) {
	if parens(x) {
		b.WriteByte('(')
		writeNode(b, x)
		b.WriteByte(')')
		return
	}
	writeNode(b, x)
}

// writeName writes an attribute name, bare when it lexes as a name.
func writeName(b *strings.Builder, name string) {
	bare := isIdentStart(name[0]) && keyword(name) == tokIdent
	for i := 1; bare && i < len(name); i++ {
		bare = isIdentByte(name[i])
	}
	if bare {
		b.WriteString(name)
		return
	}
	b.WriteString(quote(name))
}

func writeValue(b *strings.Builder, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString(quote(v))
	case float64:
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case nil:
		b.WriteString("null")
	}
}

// quote double-quotes s with JSON escapes for '"', '\' and control
// characters; everything else (s is valid UTF-8) is written as is.
func quote(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			} else {
				b = append(b, c)
			}
		}
	}
	return string(append(b, '"'))
}
