package query

import (
	"math"

	"github.com/RoaringBitmap/roaring/v2"
)

// BitmapSource gives the bitmaps a filter compiles from. Each method returns
// a fresh bitmap that the caller owns. storage.Coll implements it.
type BitmapSource interface {
	// Live returns every live item.
	Live() *roaring.Bitmap
	// Equal returns the items whose attribute name is the string or bool
	// v, or null for v nil, or a list holding v.
	Equal(name string, v any) *roaring.Bitmap
	// Range returns the items whose attribute name is a number between lo
	// and hi (±Inf allowed), each end included unless loOpen / hiOpen, or a
	// list holding such a number.
	Range(name string, lo, hi float64, loOpen, hiOpen bool) *roaring.Bitmap
	// Has returns the items that have attribute name, of any type (null
	// and empty lists included).
	Has(name string) *roaring.Bitmap
}

// Compile evaluates e over src and returns the matching items, always a
// subset of src.Live(); the caller owns the bitmap. The zero Expr matches
// every live item.
//
// A comparison is false for an item without the attribute or whose value has
// another type; on a list it holds when an element satisfies it (a
// CONTAINS v is a = v). a != v holds for items that have a with a value
// other than v (of any type; a list without v), so it differs from NOT
// a = v, which also holds for items without a. NOT is relative to the
// live items.
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
	case opEq, opContains:
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
