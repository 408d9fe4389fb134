package simd

import (
	"math/rand/v2"
	"testing"
)

// TestDotI8 checks DotI8 on every path against an int64 oracle: random
// codes at every length up to 64 and beyond, misaligned, and the extreme
// codes (-128 everywhere, the largest sum of MaxDotI8Len products).
func TestDotI8(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range append(sizes(), 4096, MaxDotI8Len) {
			rng := rand.New(rand.NewPCG(uint64(n), 8))
			buf := make([]int8, 2*n+32)
			for i := range buf {
				buf[i] = int8(rng.IntN(256) - 128)
			}
			a, b := buf[n%16:n%16+n], buf[n+17:2*n+17]
			for _, extreme := range []bool{false, true} {
				if extreme {
					a = make([]int8, n)
					b = make([]int8, n)
					for i := range a {
						a[i], b[i] = -128, -128
					}
				}
				var want int64
				for i := range a {
					want += int64(a[i]) * int64(b[i])
				}
				if got := DotI8(a, b); int64(got) != want {
					t.Fatalf("DotI8 n=%d extreme=%v = %d, want %d", n, extreme, got, want)
				}
			}
		}
	})
}

func TestDotI8Panics(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b []int8
	}{
		{"unequal lengths", make([]int8, 3), make([]int8, 4)},
		{"too long", make([]int8, MaxDotI8Len+1), make([]int8, MaxDotI8Len+1)},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("DotI8 of %s did not panic", c.name)
				}
			}()
			DotI8(c.a, c.b)
		}()
	}
}

func BenchmarkDotI8(b *testing.B) {
	x := make([]int8, 64)
	y := make([]int8, 64)
	for i := range x {
		x[i], y[i] = int8(i), int8(3*i)
	}
	var s int32
	for b.Loop() {
		s += DotI8(x, y)
	}
	sinkI8 = s
}

var sinkI8 int32
