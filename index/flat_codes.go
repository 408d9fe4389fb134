package index

import (
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// A Flat that keeps codes only: the buffer of a Tiered index whose first
// stage only prunes (TieredOptions.CodesOnly), scanned with
// simd.PanelI8 instead of float32 panels. Each vector is its int8 code
// (quant.go: one scale per vector), laid out 16 to a panel in groups of
// four dimensions (the code of slot s, group g, at panel s/16, offset
// g·64 + (s%16)·4), with its scale and the sum of its code; the query's
// code is shifted to unsigned (+128) for VPDPBUSD and the shift taken back
// with the sums. Scores are the codes' estimates (quant.go's bound).
//
// Measured on compact 20k, default kernel (`wpcdb bench --workload compact
// --n 20000`): see TieredOptions.CodesOnly.
type flatCodes struct {
	groups int       // ⌈dim/4⌉
	panels []int8    // len(ids) rounded up to whole panels of groups·64 bytes
	scale  []float32 // per slot
	sum    []int32   // per slot: Σ code
	code   []int8    // scratch of groups·4 (writes only, under the write lock)
}

// newCodeFlat returns an empty Flat of dimension dim that keeps codes only
// (a float Flat when the dimension has no codes: quantizable).
func newCodeFlat(dim int, m Metric) *Flat {
	f := NewFlat(dim, m)
	if quantizable(dim) {
		g := (dim + 3) / 4
		f.codes = &flatCodes{groups: g, code: make([]int8, 4*g)}
		f.pw = simd.PanelI8Lanes
	}
	return f
}

// codeLane locates slot s's code: the offset of its panel and its byte
// offset within each group.
func (f *Flat) codeLane(s int) (base, off int) {
	return (s / f.pw) * f.codes.groups * 64, (s % f.pw) * 4
}

// putCode writes the code of prepared vector v into slot s.
func (f *Flat) putCode(s int, v []float32) {
	c := f.codes
	clear(c.code)
	c.scale[s] = quantize(c.code, v)
	var sum int32
	base, off := f.codeLane(s)
	for g := 0; g < c.groups; g++ {
		copy(c.panels[base+g*64+off:base+g*64+off+4], c.code[4*g:4*g+4])
	}
	for _, x := range c.code {
		sum += int32(x)
	}
	c.sum[s] = sum
}

// moveCode copies slot from's code into slot to, and zeroes slot from.
func (f *Flat) moveCode(from, to int) {
	c := f.codes
	fb, fo := f.codeLane(from)
	tb, to4 := f.codeLane(to)
	for g := 0; g < c.groups; g++ {
		copy(c.panels[tb+g*64+to4:tb+g*64+to4+4], c.panels[fb+g*64+fo:fb+g*64+fo+4])
		clear(c.panels[fb+g*64+fo : fb+g*64+fo+4])
	}
	c.scale[to], c.sum[to] = c.scale[from], c.sum[from]
}

// vecCode writes slot s's vector as its code gives it back (scale · code):
// what Save stores and the graph builder re-quantizes to the same code.
func (f *Flat) vecCode(s int, dst []float32) {
	c := f.codes
	base, off := f.codeLane(s)
	for k := range dst {
		dst[k] = c.scale[s] * float32(c.panels[base+(k/4)*64+off+k%4])
	}
}

// codeNorm2 is the squared norm of slot s's vector as its code gives it
// back.
func (f *Flat) codeNorm2(s int) float32 {
	c := f.codes
	base, off := f.codeLane(s)
	var n int32
	for g := 0; g < c.groups; g++ {
		for _, x := range c.panels[base+g*64+off : base+g*64+off+4] {
			n += int32(x) * int32(x)
		}
	}
	return c.scale[s] * c.scale[s] * float32(n)
}

// searchCodes is Search's scan for a Flat of codes (f.mu held): the
// query's code against every panel (or the members of a small filter),
// each estimate entering top when it can.
func (f *Flat) searchCodes(pq []float32, qn2 float32, top *topK, filter *roaring.Bitmap) {
	c := f.codes
	qc := make([]int8, 4*c.groups)
	qs := quantize(qc[:f.dim], pq)
	qu := make([]uint8, len(qc))
	for i, x := range qc {
		qu[i] = uint8(int16(x) + 128)
	}
	est := func(acc int32, s int) float32 {
		d := qs * c.scale[s] * float32(int64(acc)-128*int64(c.sum[s]))
		if f.metric == L2 {
			return -(qn2 + f.norms2[s] - 2*d)
		}
		return d
	}
	if filter != nil && filter.GetCardinality() < uint64(len(f.ids)) {
		it := filter.Iterator()
		for it.HasNext() {
			id := it.Next()
			s, ok := f.slot[id]
			if !ok {
				continue
			}
			base, off := f.codeLane(s)
			var acc int32
			for g := 0; g < c.groups; g++ {
				for j := 0; j < 4; j++ {
					acc += int32(qu[4*g+j]) * int32(c.panels[base+g*64+off+j])
				}
			}
			top.push(Result{ID: id, Score: est(acc, s)})
		}
		return
	}
	worst := float32(math.Inf(-1))
	const chunk = 8 // panels per kernel call
	var out [chunk * simd.PanelI8Lanes]int32
	np := (len(f.ids) + f.pw - 1) / f.pw
	stride := c.groups * 64
	for p0 := 0; p0 < np; p0 += chunk {
		p1 := min(np, p0+chunk)
		simd.PanelI8(out[:], qu, c.panels[p0*stride:p1*stride], c.groups, p1-p0)
		s0 := p0 * f.pw
		for i, acc := range out[:min((p1-p0)*f.pw, len(f.ids)-s0)] {
			s := s0 + i
			sc := est(acc, s)
			if sc < worst || (filter != nil && !filter.Contains(f.ids[s])) {
				continue
			}
			top.push(Result{ID: f.ids[s], Score: sc})
			if top.full() {
				worst = top.worst()
			}
		}
	}
}

// growCodes adds room for slot s (a new panel when s starts one).
func (f *Flat) growCodes(s int) {
	c := f.codes
	if s%f.pw == 0 {
		c.panels = append(c.panels, make([]int8, c.groups*64)...)
	}
	c.scale = append(c.scale, 0)
	c.sum = append(c.sum, 0)
}

// truncateCodes drops the slots from n on (their codes already zeroed).
func (f *Flat) truncateCodes(n int) {
	c := f.codes
	c.panels = c.panels[:(n+f.pw-1)/f.pw*c.groups*64]
	c.scale, c.sum = c.scale[:n], c.sum[:n]
}

// shrinkCodes reallocates the codes at twice the slots held.
func (f *Flat) shrinkCodes() {
	c := f.codes
	c.panels = append(make([]int8, 0, max(2*len(c.panels), 4*c.groups*64)), c.panels...)
	c.scale = slices.Clip(append(make([]float32, 0, 2*len(c.scale)), c.scale...))
	c.sum = append(make([]int32, 0, 2*len(c.sum)), c.sum...)
}

// toCodes returns a Flat of codes holding f's vectors (f is a loaded
// float buffer; a saved buffer of codes holds scale · code, which
// quantizes back to the same code).
func (f *Flat) toCodes() *Flat {
	g := newCodeFlat(f.dim, f.metric)
	if g.codes == nil {
		return f
	}
	v := make([]float32, f.dim)
	for s, id := range f.ids {
		f.vec(s, v)
		g.addPrepared(id, v)
	}
	return g
}
