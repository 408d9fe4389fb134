package query

import (
	"math"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
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
// *andNode or *orNode. Values are string, float64 (finite) or bool.
type node interface{}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var opText = [...]string{opEq: "=", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">="}

// cmpNode is attr op val. The parser admits <, <=, >, >= with numbers only.
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

// BitmapSource gives the bitmaps a filter compiles from. Each method returns
// a fresh bitmap that the caller owns. storage.Coll implements it.
type BitmapSource interface {
	// Live returns every live item.
	Live() *roaring.Bitmap
	// Equal returns the items whose attribute name is the string or bool v.
	Equal(name string, v any) *roaring.Bitmap
	// Range returns the items whose attribute name is a number between lo
	// and hi (±Inf allowed), each end included unless loOpen / hiOpen.
	Range(name string, lo, hi float64, loOpen, hiOpen bool) *roaring.Bitmap
	// Has returns the items that have attribute name, of any type.
	Has(name string) *roaring.Bitmap
}

// Compile evaluates e over src and returns the matching items, always a
// subset of src.Live(); the caller owns the bitmap. The zero Expr matches
// every live item.
//
// A comparison is false for an item without the attribute or whose value has
// another type; a != v holds for items that have a with a value other than v
// (of any type), so it differs from NOT a = v, which also holds for items
// without a. NOT is relative to the live items.
//
// Compile reads src once per comparison: for a result that reflects one
// point in time, src must not change meanwhile (storage.Coll reads are each
// atomic, but a write between two of them is seen by the later ones only).
func Compile(e Expr, src BitmapSource) *roaring.Bitmap {
	c := compiler{src: src, live: src.Live()}
	if e.root == nil {
		return c.live
	}
	out := c.eval(e.root)
	out.And(c.live)
	return out
}

// compiler turns a syntax tree into a bitmap. Intermediate bitmaps may hold
// items that are not live; Compile intersects with live at the end.
type compiler struct {
	src  BitmapSource
	live *roaring.Bitmap
}

func (c *compiler) eval(n node) *roaring.Bitmap {
	switch n := n.(type) {
	case *cmpNode:
		return c.compare(n)
	case *inNode:
		out := roaring.New()
		for _, v := range n.vals {
			out.Or(c.equal(n.attr, v))
		}
		if n.negated {
			has := c.src.Has(n.attr)
			has.AndNot(out)
			return has
		}
		return out
	case *notNode:
		return roaring.AndNot(c.live, c.eval(n.x))
	case *andNode:
		// Subtract the NOT operands rather than intersecting with their
		// complements: it saves copying live for each.
		var out *roaring.Bitmap
		var negated []node
		for _, x := range n.xs {
			if not, ok := x.(*notNode); ok {
				negated = append(negated, not.x)
				continue
			}
			if bm := c.eval(x); out == nil {
				out = bm
			} else {
				out.And(bm)
			}
			if out.IsEmpty() {
				return out
			}
		}
		if out == nil {
			out = c.live.Clone()
		}
		for _, x := range negated {
			if out.IsEmpty() {
				break
			}
			out.AndNot(c.eval(x))
		}
		return out
	case *orNode:
		out := c.eval(n.xs[0])
		for _, x := range n.xs[1:] {
			out.Or(c.eval(x))
		}
		return out
	}
	panic("query: unknown filter node")
}

func (c *compiler) compare(n *cmpNode) *roaring.Bitmap {
	switch n.op {
	case opEq:
		return c.equal(n.attr, n.val)
	case opNe:
		has := c.src.Has(n.attr)
		has.AndNot(c.equal(n.attr, n.val))
		return has
	}
	v, inf := n.val.(float64), math.Inf(1)
	switch n.op {
	case opLt:
		return c.src.Range(n.attr, -inf, v, false, true)
	case opLe:
		return c.src.Range(n.attr, -inf, v, false, false)
	case opGt:
		return c.src.Range(n.attr, v, inf, true, false)
	default: // opGe
		return c.src.Range(n.attr, v, inf, false, false)
	}
}

// equal returns the items whose attribute is v; numbers come from Range so
// that -0 and +0 are equal.
func (c *compiler) equal(attr string, v any) *roaring.Bitmap {
	if f, ok := v.(float64); ok {
		return c.src.Range(attr, f, f, false, false)
	}
	return c.src.Equal(attr, v)
}
