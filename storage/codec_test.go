package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// f16Reference rounds through float64 arithmetic: an independent way to get
// the nearest binary16 (ties to even), by enumerating the neighbours.
func f16Reference(f float32) float32 {
	if f != f {
		return f
	}
	best, bestErr := float32(0), math.Inf(1)
	// Every finite binary16 value, positive and negative.
	for h := 0; h < 0x7c00; h++ {
		for _, s := range []float64{1, -1} {
			v := s * f16Value(uint16(h))
			e := math.Abs(v - float64(f))
			if e < bestErr || e == bestErr && uint16(h)&1 == 0 {
				best, bestErr = float32(v), e
			}
		}
	}
	// Beyond the largest finite value by at least half an ulp: Inf.
	if math.Abs(float64(f)) >= 65520 {
		return float32(math.Copysign(math.Inf(1), float64(f)))
	}
	return best
}

func f16Value(h uint16) float64 {
	exp := int(h>>10) & 0x1f
	man := float64(h & 0x3ff)
	if exp == 0 {
		return man * math.Pow(2, -24)
	}
	return (1 + man/1024) * math.Pow(2, float64(exp-15))
}

func f32ToF16(f float32) uint16 {
	var h [1]uint16
	simd.F32ToF16(h[:], []float32{f})
	return h[0]
}

func f16ToF32(h uint16) float32 {
	var f [1]float32
	simd.F16ToF32(f[:], []uint16{h})
	return f[0]
}

func f32ToBF16(f float32) uint16 {
	var h [1]uint16
	simd.F32ToBF16(h[:], []float32{f})
	return h[0]
}

func bf16ToF32(h uint16) float32 {
	var f [1]float32
	simd.BF16ToF32(f[:], []uint16{h})
	return f[0]
}

// TestF16 checks storage's half-precision rounding (internal/simd) against
// an independent nearest-value search.
func TestF16(t *testing.T) {
	const seed = 16
	rng := rand.New(rand.NewPCG(seed, 0))
	vals := []float32{0, 1, -1, 0.5, 65504, 65519, 65520, -65520, 1e-8, 5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5, 1.0009766, 1.00048828125, 1.0014648}
	for i := 0; i < 300; i++ {
		vals = append(vals, float32(rng.NormFloat64()*math.Pow(10, rng.Float64()*10-6)))
	}
	for _, v := range vals {
		got := f16ToF32(f32ToF16(v))
		want := f16Reference(v)
		if got != want && !(got == 0 && want == 0) {
			t.Errorf("seed %d: f16(%g) = %g, want %g", seed, v, got, want)
		}
	}
	if h := f32ToF16(float32(math.NaN())); f16ToF32(h) == f16ToF32(h) {
		t.Error("NaN did not stay NaN")
	}
	// Every binary16 widens and narrows back to itself.
	for h := 0; h < 1<<16; h++ {
		f := f16ToF32(uint16(h))
		if f != f {
			continue
		}
		if back := f32ToF16(f); back != uint16(h) {
			t.Fatalf("%#04x → %g → %#04x", h, f, back)
		}
		if float64(f) != math.Copysign(f16Value(uint16(h)&0x7fff), float64(f)) && h&0x7c00 != 0x7c00 {
			t.Fatalf("%#04x widens to %g, want %g", h, f, f16Value(uint16(h)&0x7fff))
		}
	}
}

func TestBF16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := bf16ToF32(uint16(h))
		if f != f {
			if g := bf16ToF32(f32ToBF16(f)); g == g {
				t.Fatalf("NaN %#04x lost", h)
			}
			continue
		}
		if back := f32ToBF16(f); back != uint16(h) {
			t.Fatalf("%#04x → %g → %#04x", h, f, back)
		}
	}
	// Ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
	if got := bf16ToF32(f32ToBF16(1 + 1.0/256)); got != 1 {
		t.Errorf("tie rounded to %v, want 1", got)
	}
	if got := bf16ToF32(f32ToBF16(1 + 3.0/256)); got != 1+4.0/256 {
		t.Errorf("tie rounded to %v, want 1+2^-6", got)
	}
}

func TestQuantizeOverflow(t *testing.T) {
	c := wpcsim.Cloud{Dim: 2, Weights: []float32{1, 1}, Points: []float32{1, 2, 3, 70000}}
	_, err := Quantize(collconfig.EncodingF16, c)
	if err == nil || err.Error() != "points[1][1]: value 70000 overflows the collection's f16 encoding" {
		t.Errorf("got %v", err)
	}
	if _, err := Quantize(collconfig.EncodingBF16, c); err != nil {
		t.Errorf("bf16 holds 70000: %v", err)
	}
}

func TestSortableFloat(t *testing.T) {
	vals := []float64{math.Inf(-1), -math.MaxFloat64, -1e10, -1, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 0.5, 1, 2021, math.MaxFloat64, math.Inf(1)}
	for i := 1; i < len(vals); i++ {
		if !(SortableFloat(vals[i-1]) < SortableFloat(vals[i])) {
			t.Errorf("%g and %g out of order", vals[i-1], vals[i])
		}
		if UnsortableFloat(SortableFloat(vals[i])) != vals[i] {
			t.Errorf("%g does not round-trip", vals[i])
		}
	}
	n0, k0 := numKey(math.Copysign(0, -1))
	p0, kp := numKey(0)
	if n0 != p0 || k0 != kp {
		t.Error("-0 and +0 must share a key")
	}
	_, a := numKey(1)
	_, b := numKey(math.Nextafter(1, 2))
	if a+1 != b {
		t.Error("consecutive floats must have consecutive keys")
	}
	for _, f := range []float64{math.Inf(-1), -1e300, -1, -1e-300, 0, 1e-300, 1, 1e300, math.Inf(1)} {
		if neg, k := numKey(f); k < 0 || neg != (f < 0) {
			t.Errorf("numKey(%g) = %v, %d: keys must be non-negative, halves by sign", f, neg, k)
		}
	}
}

func TestPostingAndAttrsRoundTrip(t *testing.T) {
	attrs := map[string]any{"color": "red", "year": 2021.0, "neg": -3.5, "ok": true, "no": false, "empty": "", "uni": "✓\x00x"}
	back, err := decodeAttrs(encodeAttrs(attrs))
	if err != nil || !reflect.DeepEqual(back, attrs) {
		t.Fatalf("attrs round trip: %v %v", back, err)
	}
	prefix := len(collKey(7, subPosting))
	for name, v := range attrs {
		k := postingKey(7, name, v, 123456)
		n, got, iid, err := parsePosting(k[prefix:])
		if err != nil || n != name || got != v || iid != 123456 {
			t.Errorf("posting %s=%v: got %s=%v iid %d err %v", name, v, n, got, iid, err)
		}
	}
	// Numeric postings of one attribute sort by value.
	nums := []float64{3, -1, 2021, -1e9, 0.5}
	var keys []string
	for _, v := range nums {
		keys = append(keys, string(postingKey(1, "y", v, 1)))
	}
	sort.Strings(keys)
	sort.Float64s(nums)
	for i, k := range keys {
		_, v, _, _ := parsePosting([]byte(k)[prefix:])
		if v != nums[i] {
			t.Errorf("numeric postings out of order at %d: %v want %v", i, v, nums[i])
		}
	}
}

// TestAttrListsAndNull: lists and null round-trip through the attribute
// record, and their postings (a list: its marker and one per distinct
// element) through the posting keys.
func TestAttrListsAndNull(t *testing.T) {
	attrs := map[string]any{"tags": []any{"a", 2.5, true, "a", -0.0}, "none": nil, "empty": []any{}, "s": "x"}
	back, err := decodeAttrs(encodeAttrs(attrs))
	if err != nil || !reflect.DeepEqual(back, attrs) {
		t.Fatalf("attrs round trip: %#v %v", back, err)
	}
	want := map[posting]struct{}{
		{"tags", listMarker{}}: {}, {"tags", "a"}: {}, {"tags", listNumber(2.5)}: {}, {"tags", true}: {}, {"tags", listNumber(0)}: {},
		{"none", nil}: {}, {"empty", listMarker{}}: {}, {"s", "x"}: {},
	}
	got := postingsOf(attrs)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("postings %v, want %v", got, want)
	}
	prefix := len(collKey(7, subPosting))
	for p := range got {
		n, v, iid, err := parsePosting(postingKey(7, p.name, p.v, 9)[prefix:])
		if err != nil || n != p.name || v != p.v || iid != 9 {
			t.Errorf("posting %v: got %s=%#v iid %d err %v", p, n, v, iid, err)
		}
	}
	// A damaged list is an error, never a huge allocation.
	rec := encodeAttrs(map[string]any{"l": []any{"a"}})
	for _, bad := range [][]byte{
		append(rec[:len(rec)-4:len(rec)-4], 0xff, 0xff, 0xff, 0x0f), // count 2^32-1 in a few bytes
		rec[:len(rec)-1], // cut
		append(append([]byte{}, rec[:len(rec)-3]...), attrNull), // null in a list
	} {
		if _, err := decodeAttrs(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeAttrs(%x): %v", bad, err)
		}
	}
}

// TestAttrRecordFormatStable: an attribute record and postings written
// before lists and null existed (these bytes) still read.
func TestAttrRecordFormatStable(t *testing.T) {
	old := []byte("\x03\x01ab\x01\x01c" + "n\x00\x00\x00\x00\x00\x00\xf0\x3f" + "\x01ss\x02hi")
	got, err := decodeAttrs(old)
	if want := map[string]any{"a": true, "c": 1.0, "s": "hi"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("old record: %v %v, want %v", got, err, want)
	}
	if got := encodeAttrs(map[string]any{"a": true, "c": 1.0, "s": "hi"}); !bytes.Equal(got, old) {
		t.Errorf("scalars encode as before: %x, want %x", got, old)
	}
	n, v, iid, err := parsePosting([]byte("\x01cn\xbf\xf0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05"))
	if err != nil || n != "c" || v != 1.0 || iid != 5 {
		t.Errorf("old numeric posting: %s=%v iid %d err %v", n, v, iid, err)
	}
}

// TestCheckAttrsLimits: strings up to 64 KiB, lists up to 1,024 values of
// strings, numbers and booleans, 1 MiB of attributes in all; each refusal
// names the attribute.
func TestCheckAttrsLimits(t *testing.T) {
	big := strings.Repeat("x", MaxAttrValueLength)
	long := make([]any, MaxAttrListLength)
	for i := range long {
		long[i] = float64(i)
	}
	for _, ok := range []map[string]any{
		{"s": big}, {"l": long}, {"n": nil}, {"l": []any{}}, {"l": []any{big, 1.0, false}},
	} {
		if err := CheckAttrs(ok); err != nil {
			t.Errorf("%.40v: %v", ok, err)
		}
	}
	many := map[string]any{}
	for i := range 17 {
		many[fmt.Sprint("s", i)] = big
	}
	for _, tc := range []struct {
		attrs map[string]any
		want  string
	}{
		{map[string]any{"s": big + "x"}, "attrs.s: string of 65537 bytes exceeds 65536"},
		{map[string]any{"l": append(long, 1.0)}, "attrs.l: list of 1025 values exceeds 1024"},
		{map[string]any{"l": []any{"a", nil}}, "attrs.l[1]: a list holds strings, numbers and booleans, not null"},
		{map[string]any{"l": []any{[]any{"a"}}}, "attrs.l[0]: a list holds strings, numbers and booleans, got a list"},
		{map[string]any{"l": []any{"a", big + "x"}}, "attrs.l[1]: string of 65537 bytes"},
		{map[string]any{"l": []any{math.NaN()}}, "attrs.l[0]: number must be finite"},
		{many, "more than 1048576 bytes of attributes"},
		{map[string]any{"s": "a\xffb"}, "attrs.s: string is not valid UTF-8"},
		{map[string]any{"l": []any{"ok", "\xfe"}}, "attrs.l[1]: string is not valid UTF-8"},
		{map[string]any{"n\xff": 1.0}, "is not valid UTF-8"},
	} {
		if err := CheckAttrs(tc.attrs); !errors.Is(err, ErrInvalidItem) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60v: %v, want %q", tc.attrs, err, tc.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	c := wpcsim.Cloud{Dim: 3, Weights: []float32{1.5, -2}, Points: []float32{1, 2, 3, 4, 5, math.MaxFloat32}}
	self := wpcsim.Self{G: 0.25, Mass: 3}
	for _, e := range []collconfig.Encoding{collconfig.EncodingF32, collconfig.EncodingF16, collconfig.EncodingBF16} {
		q := c
		if e != collconfig.EncodingF32 {
			q.Points = []float32{1, 2, 3, 4, 5, 6}
		}
		q, half, err := QuantizeBits(e, q)
		if err != nil {
			t.Fatal(err)
		}
		if (half == nil) != (e == collconfig.EncodingF32) {
			t.Errorf("%s: QuantizeBits gave %d encoded points", e, len(half))
		}
		rec := appendRecord(nil, e, "item-1", q, nil, self)
		if len(rec) != recordLen(e, "item-1", q) {
			t.Errorf("%s: record of %d bytes, recordLen says %d", e, len(rec), recordLen(e, "item-1", q))
		}
		// The bits QuantizeBits made are stored as they are.
		if reused := appendRecord(nil, e, "item-1", q, half, self); !bytes.Equal(reused, rec) {
			t.Errorf("%s: record from the quantized bits differs from one encoded on write", e)
		}
		r, err := decodeRecord(rec, e, 3)
		id, got, gs := r.ID, r.Cloud, r.Self
		if err != nil || id != "item-1" || gs != self || !reflect.DeepEqual(got, q) {
			t.Errorf("%s: got %q %+v %+v %v", e, id, got, gs, err)
		}
		if _, err := decodeRecord(rec[:len(rec)-1], e, 3); err == nil {
			t.Errorf("%s: truncated record decoded", e)
		}
	}
}

// TestRecordHalfAlignment decodes f16/bf16 records whose points start at
// odd and even byte offsets (the ID length shifts them), taking both the
// zero-copy and the copying path.
func TestRecordHalfAlignment(t *testing.T) {
	c := wpcsim.Cloud{Dim: 3, Weights: []float32{1, -2}, Points: []float32{1, 2, 3, 0.5, -0.25, 8}}
	for _, e := range []collconfig.Encoding{collconfig.EncodingF16, collconfig.EncodingBF16} {
		for _, id := range []string{"", "a", "ab", "abc"} {
			for _, shift := range []int{0, 1} {
				rec := appendRecord(make([]byte, shift, 64), e, id, c, nil, wpcsim.Self{})[shift:]
				var buf CloudBuf
				r, err := decodeRecordInto(rec, e, 3, &buf)
				gotID, got := r.ID, r.Cloud
				if err != nil || gotID != id || !reflect.DeepEqual(got, c) {
					t.Errorf("%s id %q shift %d: %+v %v", e, id, shift, got, err)
				}
			}
		}
	}
}

// TestRangeAgainstBruteForce: numeric ranges over negative, zero, tiny,
// huge and infinite values, open and closed ends, equal a brute-force scan.
// (roaring's bit-sliced index mishandles negative keys; numIndex keeps its
// keys non-negative.)
func TestRangeAgainstBruteForce(t *testing.T) {
	const seed = 808
	rng := rand.New(rand.NewPCG(seed, 1))
	st, err := Open("db", &Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, _ := st.CreateCollection("c", collconfig.Config{Dim: 1}, nil)
	// Stored values are finite (CheckAttrs); bounds may be infinite.
	special := []float64{-math.MaxFloat64, -1e300, -3, -2, -1, -0.5, -1e-300, math.Copysign(0, -1), 0, 1e-300, 0.5, 1, 2, 3, 1e300, math.MaxFloat64}
	vals := map[uint32]float64{}
	var writes []ItemWrite
	for i := 0; i < 300; i++ {
		v := special[rng.IntN(len(special))]
		if rng.IntN(3) == 0 {
			v = math.Round(rng.NormFloat64()*50) / 4
		}
		writes = append(writes, ItemWrite{ID: fmt.Sprint(i), Cloud: wpcsim.Cloud{Dim: 1, Weights: []float32{1}, Points: []float32{1}}, Attrs: map[string]any{"x": v}})
	}
	iids, err := c.Write(writes)
	if err != nil {
		t.Fatal(err)
	}
	for i, iid := range iids {
		vals[iid] = writes[i].Attrs["x"].(float64)
	}
	bounds := append(append([]float64{}, special...), -7.25, 4.5, 100, math.Inf(-1), math.Inf(1))
	for trial := 0; trial < 400; trial++ {
		lo, hi := bounds[rng.IntN(len(bounds))], bounds[rng.IntN(len(bounds))]
		loOpen, hiOpen := rng.IntN(2) == 0, rng.IntN(2) == 0
		want := roaring.New()
		for iid, v := range vals {
			if (v > lo || !loOpen && v == lo) && (v < hi || !hiOpen && v == hi) {
				want.Add(iid)
			}
		}
		if got := c.Range("x", lo, hi, loOpen, hiOpen); !got.Equals(want) {
			t.Fatalf("seed %d: x in %g..%g (open %v %v): got %d items, want %d", seed, lo, hi, loOpen, hiOpen, got.GetCardinality(), want.GetCardinality())
		}
	}
}
