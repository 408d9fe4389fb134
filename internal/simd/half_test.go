package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// f16Value decodes binary16 bits independently of f16ToF32Bits, in float64.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	man := float64(h & 0x3ff)
	switch exp {
	case 0x1f:
		if man == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	case 0:
		return sign * math.Ldexp(man, -24)
	}
	return sign * math.Ldexp(1024+man, exp-25)
}

// TestF16ToF32All converts every binary16 value on every path and checks
// it bit for bit against the reference and in value against f16Value.
func TestF16ToF32All(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	dst := make([]float32, len(src))
	forEachPath(t, func(t *testing.T) {
		clear(dst)
		F16ToF32(dst, src)
		for i, h := range src {
			if got, want := math.Float32bits(dst[i]), f16ToF32Bits(h); got != want {
				t.Fatalf("F16ToF32(%#04x) = %#08x, reference %#08x", h, got, want)
			}
			v := f16Value(h)
			if math.IsNaN(v) {
				if b := math.Float32bits(dst[i]); b&0x7fc00000 != 0x7fc00000 || b>>31 != uint32(h>>15) || (b>>13)&0x3ff != uint32(h&0x3ff)|0x200 {
					t.Fatalf("F16ToF32(%#04x) = %#08x, want quiet NaN with sign and payload", h, b)
				}
				continue
			}
			if float64(dst[i]) != v || math.Signbit(float64(dst[i])) != math.Signbit(v) {
				t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, dst[i], v)
			}
		}
	})
}

func TestF16ToF32Sizes(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range sizes() {
			rng := rand.New(rand.NewPCG(uint64(n), 10))
			src := make([]uint16, n+16)[n%16 : n%16+n]
			for i := range src {
				src[i] = uint16(rng.Uint32())
			}
			off := (n * 3) % 16
			dst, buf := guarded(n, off)
			F16ToF32(dst, src)
			checkGuards(t, buf, off, n, "F16ToF32")
			for i, h := range src {
				if math.Float32bits(dst[i]) != f16ToF32Bits(h) {
					t.Fatalf("n=%d seed %d i=%d: F16ToF32(%#04x) = %#08x", n, n, i, h, math.Float32bits(dst[i]))
				}
			}
		}
	})
}

// checkNearest checks that h (of a format whose values val decodes and
// whose largest finite code is maxFinite) is the round-to-nearest-even
// encoding of f: no neighbouring code is closer, and a tie picks the even
// code. Inf stands for the next power of two past the largest finite value.
func checkNearest(t *testing.T, f float32, h uint16, val func(uint16) float64, maxFinite uint16, next float64, name string) {
	t.Helper()
	mag := h & 0x7fff
	x := math.Abs(float64(f))
	dec := func(c uint16) float64 {
		if c > maxFinite {
			return next
		}
		return math.Abs(val(c))
	}
	if (h&0x8000 != 0) != math.Signbit(float64(f)) {
		t.Fatalf("%s(%v) = %#04x: wrong sign", name, f, h)
	}
	if x >= next {
		if mag != maxFinite+1 {
			t.Fatalf("%s(%v) = %#04x, want Inf", name, f, h)
		}
		return
	}
	v := dec(mag)
	e := math.Abs(x - v)
	for _, c := range []uint16{mag - 1, mag + 1} {
		if c > maxFinite+1 || (mag == 0 && c == 0xffff) {
			continue
		}
		en := math.Abs(x - dec(c))
		if en < e || en == e && mag&1 == 1 {
			t.Fatalf("%s(%v) = %#04x (%v), but %#04x (%v) is nearer or an even tie", name, f, h, v, c, dec(c))
		}
	}
}

func TestF32ToF16(t *testing.T) {
	forEachPath(t, testF32ToF16)
}

func testF32ToF16(t *testing.T) {
	// Every binary16 value round-trips (NaNs come back as NaN).
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := math.Float32frombits(f16ToF32Bits(h))
		var out [1]uint16
		F32ToF16(out[:], []float32{f})
		if f != f {
			if out[0]&0x7c00 != 0x7c00 || out[0]&0x3ff == 0 {
				t.Fatalf("NaN %#04x narrowed to non-NaN %#04x", h, out[0])
			}
			continue
		}
		if out[0] != h {
			t.Fatalf("round trip %#04x -> %v -> %#04x", h, f, out[0])
		}
	}
	// Random float32 across the binary16 range, and midpoints between
	// neighbouring halves, round to nearest even.
	rng := rand.New(rand.NewPCG(11, 12))
	var src []float32
	for i := 0; i < 200000; i++ {
		src = append(src, float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(44)-28)))
	}
	for i := 0; i < 0x7c00; i++ {
		a, b := f16Value(uint16(i)), 65536.0
		if i+1 < 0x7c00 {
			b = f16Value(uint16(i + 1))
		}
		src = append(src, float32((a+b)/2), -float32((a+b)/2))
	}
	src = append(src, 65519, 65520, 65535, 1e10, math.MaxFloat32, float32(math.Inf(-1)), 1e-8, 2.98e-8, 2.99e-8, 1e-45)
	dst := make([]uint16, len(src))
	F32ToF16(dst, src)
	for i, f := range src {
		checkNearest(t, f, dst[i], f16Value, 0x7bff, 65536, "F32ToF16")
	}
	// NaN payloads that live only in the low bits still give NaN.
	var out [1]uint16
	F32ToF16(out[:], []float32{math.Float32frombits(0x7f800001)})
	if out[0]&0x7c00 != 0x7c00 || out[0]&0x3ff == 0 {
		t.Errorf("NaN 0x7f800001 narrowed to %#04x", out[0])
	}
}

// TestF32ToF16Paths compares each path with the Go twin bit for bit over
// every length 0..64, odd lengths, misaligned slices and a guard band.
func TestF32ToF16Paths(t *testing.T) {
	const seed = 21
	rng := rand.New(rand.NewPCG(seed, 0))
	forEachPath(t, func(t *testing.T) {
		for _, n := range sizes() {
			for _, off := range []int{0, 1, 3} {
				src := make([]float32, n+off)
				for i := range src {
					src[i] = float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(40)-24))
				}
				if n > 2 {
					src[off] = float32(math.NaN())
					src[off+1] = float32(math.Inf(1))
				}
				buf := make([]uint16, n+off+8)
				for i := range buf {
					buf[i] = 0xdead
				}
				F32ToF16(buf[off:off+n], src[off:])
				want := make([]uint16, n)
				f32ToF16Generic(want, src[off:])
				for i := range want {
					got := buf[off+i]
					if got != want[i] && !(got&0x7c00 == 0x7c00 && got&0x3ff != 0 && want[i]&0x7c00 == 0x7c00 && want[i]&0x3ff != 0) {
						t.Fatalf("seed %d n %d off %d [%d]: %#04x, Go twin %#04x", seed, n, off, i, got, want[i])
					}
				}
				for i := 0; i < off; i++ {
					if buf[i] != 0xdead {
						t.Fatalf("n %d: wrote before dst", n)
					}
				}
				for _, g := range buf[off+n:] {
					if g != 0xdead {
						t.Fatalf("n %d: wrote past dst", n)
					}
				}
			}
		}
	})
}

func bf16Value(h uint16) float64 { return float64(math.Float32frombits(uint32(h) << 16)) }

func TestBF16(t *testing.T) {
	// Widening is a shift; every bfloat16 round-trips.
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	wide := make([]float32, len(src))
	BF16ToF32(wide, src)
	back := make([]uint16, len(src))
	F32ToBF16(back, wide)
	for i, h := range src {
		if math.Float32bits(wide[i]) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x", h, math.Float32bits(wide[i]))
		}
		if wide[i] != wide[i] {
			if back[i]&0x7f80 != 0x7f80 || back[i]&0x7f == 0 {
				t.Fatalf("NaN %#04x narrowed to non-NaN %#04x", h, back[i])
			}
			continue
		}
		if back[i] != h {
			t.Fatalf("round trip %#04x -> %#04x", h, back[i])
		}
	}
	rng := rand.New(rand.NewPCG(13, 14))
	var fs []float32
	for i := 0; i < 200000; i++ {
		fs = append(fs, math.Float32frombits(rng.Uint32()&0x7fffffff|uint32(i&1)<<31))
	}
	for i := 0; i < 0x7f80; i += 7 {
		a, b := bf16Value(uint16(i)), 0x1p128
		if i+1 < 0x7f80 {
			b = bf16Value(uint16(i + 1))
		}
		fs = append(fs, float32((a+b)/2))
	}
	fs = append(fs, math.MaxFloat32, math.Float32frombits(0x7f800001), math.Float32frombits(0xff800001))
	out := make([]uint16, len(fs))
	F32ToBF16(out, fs)
	for i, f := range fs {
		if f != f {
			if out[i]&0x7f80 != 0x7f80 || out[i]&0x7f == 0 {
				t.Fatalf("NaN %#08x narrowed to non-NaN %#04x", math.Float32bits(f), out[i])
			}
			continue
		}
		checkNearest(t, f, out[i], bf16Value, 0x7f7f, 0x1p128, "F32ToBF16")
	}
}

func BenchmarkF16ToF32(b *testing.B) {
	const n = 197 * 512
	rng := rand.New(rand.NewPCG(1, 6))
	src := make([]uint16, n)
	for i := range src {
		src[i] = uint16(rng.Uint32())
	}
	dst := make([]float32, n)
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(2 * n)
		for b.Loop() {
			F16ToF32(dst, src)
		}
	})
}
