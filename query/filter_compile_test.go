package query

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the randomized filter tests (0: the fixed seeds)")

func seeds() []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	return []uint64{1, 2, 3}
}

// fakeSource is a BitmapSource over items held in a slice; item i has
// internal ID i. Dead items are still in Equal, Range and Has, which a
// storage.Coll never does, to check that Compile keeps to Live.
type fakeSource struct {
	items []map[string]any
	dead  []bool
}

// match returns the items whose attribute name is a value, or a list
// holding an element, that f accepts.
func (s *fakeSource) match(f func(v any) bool, name string) *roaring.Bitmap {
	bm := roaring.New()
	for i, it := range s.items {
		v, ok := it[name]
		if !ok {
			continue
		}
		if list, isList := v.([]any); isList && slices.ContainsFunc(list, f) || !isList && f(v) {
			bm.Add(uint32(i))
		}
	}
	return bm
}

func (s *fakeSource) Live() *roaring.Bitmap {
	bm := roaring.New()
	for i := range s.items {
		if !s.dead[i] {
			bm.Add(uint32(i))
		}
	}
	return bm
}

func (s *fakeSource) Equal(name string, v any) *roaring.Bitmap {
	switch v.(type) {
	case string, bool, nil: // as storage.Coll: numbers are for Range
		return s.match(func(x any) bool { return x == v }, name)
	}
	return roaring.New()
}

func (s *fakeSource) Range(name string, lo, hi float64, loOpen, hiOpen bool) *roaring.Bitmap {
	return s.match(func(x any) bool {
		f, ok := x.(float64)
		return ok && (lo < f || !loOpen && lo == f) && (f < hi || !hiOpen && f == hi)
	}, name)
}

func (s *fakeSource) Has(name string) *roaring.Bitmap {
	bm := roaring.New()
	for i, it := range s.items {
		if _, ok := it[name]; ok {
			bm.Add(uint32(i))
		}
	}
	return bm
}

// oracle evaluates n on one item by the documented semantics, directly: a
// comparison on a list holds when one of its elements satisfies it, and
// != and NOT IN hold when the item has the attribute and none does.
func oracle(n node, item map[string]any) bool {
	same := func(x, v any) bool {
		switch v := v.(type) {
		case string:
			s, ok := x.(string)
			return ok && s == v
		case bool:
			b, ok := x.(bool)
			return ok && b == v
		case float64:
			f, ok := x.(float64)
			return ok && f == v
		case nil:
			return x == nil
		}
		panic(fmt.Sprintf("value of type %T", v))
	}
	// elems is a value as the elements a comparison looks at.
	elems := func(x any) []any {
		if list, ok := x.([]any); ok {
			return list
		}
		return []any{x}
	}
	switch n := n.(type) {
	case *cmpNode:
		x, ok := item[n.attr]
		if !ok {
			return false
		}
		switch n.op {
		case opEq, opContains:
			return slices.ContainsFunc(elems(x), func(e any) bool { return same(e, n.val) })
		case opNe:
			return !slices.ContainsFunc(elems(x), func(e any) bool { return same(e, n.val) })
		}
		v := n.val.(float64)
		return slices.ContainsFunc(elems(x), func(e any) bool {
			f, ok := e.(float64)
			return ok && map[cmpOp]bool{opLt: f < v, opLe: f <= v, opGt: f > v, opGe: f >= v}[n.op]
		})
	case *inNode:
		x, ok := item[n.attr]
		if !ok {
			return false
		}
		hit := slices.ContainsFunc(elems(x), func(e any) bool {
			return slices.ContainsFunc(n.vals, func(v any) bool { return same(e, v) })
		})
		return hit != n.negated
	case *notNode:
		return !oracle(n.x, item)
	case *andNode:
		for _, x := range n.xs {
			if !oracle(x, item) {
				return false
			}
		}
		return true
	case *orNode:
		for _, x := range n.xs {
			if oracle(x, item) {
				return true
			}
		}
		return false
	}
	panic(fmt.Sprintf("node %T", n))
}

// gen makes random items and filters over a small vocabulary, so that
// comparisons often hit, with mixed types per attribute.
type gen struct {
	r *rand.Rand
	// nonNegative leaves out negative numbers and the operators < and <=
	// (a narrower run; it once isolated a storage bug with negative keys).
	nonNegative bool
}

var (
	genNames   = []string{"a", "b", "year", "x.y-z", "and", "two words", "é"}
	genStrings = []string{"red", "blue", "", "2020", "a\"b\\c\n", "é😀", "true"}
	genNumbers = []float64{-3, -2, -1, math.Copysign(0, -1), 0, 0.5, 1, 2, 3, 2020, -1e300, 5e-324}
)

// value is a filter literal: a string, boolean, number or, rarely, null.
func (g gen) value() any {
	if g.r.IntN(12) == 0 {
		return nil
	}
	return g.scalar()
}

func (g gen) scalar() any {
	switch g.r.IntN(5) {
	case 0:
		return genStrings[g.r.IntN(len(genStrings))]
	case 1:
		return g.r.IntN(2) == 0
	default:
		return g.number()
	}
}

func (g gen) number() float64 {
	for {
		f := genNumbers[g.r.IntN(len(genNumbers))]
		if !g.nonNegative || f >= 0 {
			return f
		}
	}
}

func (g gen) item() map[string]any {
	it := map[string]any{}
	for i, name := range genNames {
		if g.r.IntN(10) < 3 {
			continue // missing
		}
		// Mostly one type per attribute, sometimes another; sometimes
		// null, sometimes a list (empty, or of mixed scalars, repeats
		// included).
		var v any
		switch t := (i + g.r.IntN(4)/3) % 3; {
		case g.r.IntN(15) == 0:
			v = nil
		case g.r.IntN(5) == 0:
			list := []any{}
			for range g.r.IntN(4) {
				list = append(list, g.scalar())
			}
			v = list
		case t == 0:
			v = genStrings[g.r.IntN(len(genStrings))]
		case t == 1:
			v = g.number()
		default:
			v = g.r.IntN(2) == 0
		}
		it[name] = v
	}
	return it
}

func (g gen) expr(depth int) node {
	if depth == 0 || g.r.IntN(10) < 4 {
		name := genNames[g.r.IntN(len(genNames))]
		if g.r.IntN(4) == 0 {
			n := &inNode{attr: name, negated: g.r.IntN(3) == 0}
			for range 1 + g.r.IntN(4) {
				n.vals = append(n.vals, g.value())
			}
			return n
		}
		op := cmpOp(g.r.IntN(len(opText)))
		if g.nonNegative && (op == opLt || op == opLe) {
			op += opGt - opLt
		}
		v := g.value()
		switch {
		case op == opContains:
			v = g.scalar()
		case op > opNe:
			v = g.number()
		}
		return &cmpNode{name, op, v}
	}
	switch g.r.IntN(5) {
	case 0:
		return &notNode{g.expr(depth - 1)}
	case 1, 2:
		n := &andNode{}
		for range 2 + g.r.IntN(3) {
			n.xs = append(n.xs, g.expr(depth-1))
		}
		return n
	default:
		n := &orNode{}
		for range 2 + g.r.IntN(3) {
			n.xs = append(n.xs, g.expr(depth-1))
		}
		return n
	}
}

// noisy prints n in a random non-canonical spelling that parses to the
// same tree: random whitespace, keyword case, escapes, number formats,
// quoted names and redundant parentheses. It is written apart from the
// canonical printer so that each checks the other.
func (g gen) noisy(b *strings.Builder, n node) {
	ws := func() {
		b.WriteString([]string{" ", "  ", "\t", "\n", "\r\n "}[g.r.IntN(5)])
	}
	kw := func(k string) {
		ws()
		switch g.r.IntN(3) {
		case 0:
			b.WriteString(strings.ToLower(k))
		case 1:
			b.WriteString(k)
		default:
			for i := range len(k) {
				c := k[i]
				if g.r.IntN(2) == 0 {
					c |= 0x20
				}
				b.WriteByte(c)
			}
		}
		ws()
	}
	str := func(s string) {
		b.WriteByte('"')
		for _, r := range s {
			switch {
			case r == '"' || r == '\\':
				b.WriteString(`\` + string(r))
			case r == '\n':
				b.WriteString([]string{`\n`, `\u000a`, `\u000A`}[g.r.IntN(3)])
			case r > 0xffff && g.r.IntN(2) == 0:
				r1, r2 := rune(0xd800+((r-0x10000)>>10)), rune(0xdc00+((r-0x10000)&0x3ff))
				fmt.Fprintf(b, `\u%04x\u%04X`, r1, r2)
			case r < 0x80 && g.r.IntN(3) == 0:
				fmt.Fprintf(b, `\u%04x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	}
	name := func(s string) {
		if s == "a" || s == "b" || s == "year" || s == "x.y-z" {
			if g.r.IntN(2) == 0 {
				b.WriteString(s)
				return
			}
		}
		str(s)
	}
	value := func(v any) {
		switch v := v.(type) {
		case string:
			str(v)
		case bool:
			kw(strings.ToUpper(strconv.FormatBool(v)))
		case nil:
			kw([]string{"null", "NULL", "Null"}[g.r.IntN(3)])
		case float64:
			fmts := []byte{'g', 'e', 'E', 'x', 'f'}
			f := fmts[g.r.IntN(len(fmts))]
			if f == 'f' && math.Abs(v) > 1e30 {
				f = 'g'
			}
			b.WriteString(strconv.FormatFloat(v, f, -1, 64))
		}
	}
	group := func(x node, need bool) {
		if need || g.r.IntN(4) == 0 {
			b.WriteByte('(')
			ws()
			g.noisy(b, x)
			ws()
			b.WriteByte(')')
			return
		}
		g.noisy(b, x)
	}
	isAnd := func(x node) bool { _, ok := x.(*andNode); return ok }
	isOr := func(x node) bool { _, ok := x.(*orNode); return ok }
	switch n := n.(type) {
	case *cmpNode:
		name(n.attr)
		if n.op == opContains {
			kw("CONTAINS")
			value(n.val)
			break
		}
		if g.r.IntN(2) == 0 {
			ws()
		}
		b.WriteString(opText[n.op])
		if g.r.IntN(2) == 0 {
			ws()
		}
		value(n.val)
	case *inNode:
		name(n.attr)
		if n.negated {
			kw("NOT")
		}
		kw("IN")
		b.WriteByte('(')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
				ws()
			}
			value(v)
		}
		b.WriteByte(')')
	case *notNode:
		kw("NOT")
		switch n.x.(type) {
		case *andNode, *orNode:
			group(n.x, true)
		case *notNode:
			g.noisy(b, n.x)
		default:
			group(n.x, false)
		}
	case *andNode:
		for i, x := range n.xs {
			if i > 0 {
				kw("AND")
			}
			if isAnd(x) || isOr(x) {
				group(x, true)
			} else {
				group(x, false)
			}
		}
	case *orNode:
		for i, x := range n.xs {
			if i > 0 {
				kw("OR")
			}
			if isOr(x) {
				group(x, true)
			} else {
				g.noisy(b, x) // an AND needs no parentheses here
			}
		}
	}
}

// checkFilters compiles random filters over src and compares each with the
// oracle over items (item i is internal ID iids[i]; dead ones never match).
func checkFilters(t *testing.T, g gen, rounds int, src BitmapSource, items []map[string]any, iids []uint32, dead []bool) {
	t.Helper()
	for range rounds {
		root := g.expr(3)
		canon := format(root)
		e, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical %q does not parse: %v", canon, err)
		}
		if !reflect.DeepEqual(e.root, root) || e.String() != canon {
			t.Fatalf("canonical %q parses to %q", canon, e.String())
		}
		var b strings.Builder
		g.noisy(&b, root)
		e2, err := Parse(b.String())
		if err != nil {
			t.Fatalf("%q (a spelling of %q) does not parse: %v", b.String(), canon, err)
		}
		if e2.String() != canon {
			t.Fatalf("%q (a spelling of %q) parses to %q", b.String(), canon, e2.String())
		}

		want := roaring.New()
		for i, it := range items {
			if !dead[i] && oracle(root, it) {
				want.Add(iids[i])
			}
		}
		if got := Compile(e, src); !got.Equals(want) {
			t.Fatalf("filter %s:\n got %v\nwant %v", canon, got.ToArray(), want.ToArray())
		}
	}
}

func TestCompileRandom(t *testing.T) {
	for _, seed := range seeds() {
		t.Logf("seed %d (rerun with -seed %d)", seed, seed)
		g := gen{r: rand.New(rand.NewPCG(seed, seed))}
		src := &fakeSource{}
		var iids []uint32
		for i := range 300 {
			src.items = append(src.items, g.item())
			src.dead = append(src.dead, g.r.IntN(10) == 0)
			iids = append(iids, uint32(i))
		}
		checkFilters(t, g, 2000, src, src.items, iids, src.dead)
	}
}

func TestCompileZero(t *testing.T) {
	src := &fakeSource{items: make([]map[string]any, 5), dead: []bool{false, true, false, false, true}}
	if got := Compile(Expr{}, src); !got.Equals(roaring.BitmapOf(0, 2, 3)) {
		t.Errorf("Compile(Expr{}) = %v, want the live items [0 2 3]", got.ToArray())
	}
}
