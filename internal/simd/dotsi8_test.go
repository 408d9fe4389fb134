package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestDotsI8 checks DotsI8 on every path against an int64 oracle: rows of
// every length up to 64 and beyond (multiples of 16 take the assembly),
// in a random order with repeats, the extreme codes, and the last row of
// codes; out beyond len(idx) is left alone.
func TestDotsI8(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range append(sizes(), 784, 4096) {
			rng := rand.New(rand.NewPCG(uint64(n), 9))
			rows := 37
			codes := make([]int8, rows*n)
			q := make([]int8, n)
			for i := range codes {
				codes[i] = int8(rng.IntN(256) - 128)
			}
			for i := range q {
				q[i] = int8(rng.IntN(256) - 128)
			}
			if n == 64 { // the extreme row: -128 against -128
				for i := range q {
					q[i] = -128
					codes[5*n+i] = -128
				}
			}
			idx := []uint32{uint32(rows - 1), 5, 0}
			for range 40 {
				idx = append(idx, uint32(rng.IntN(rows)))
			}
			out := make([]int32, len(idx)+1)
			out[len(idx)] = 12345
			DotsI8(out, q, codes, idx)
			for i, r := range idx {
				var want int64
				for j := 0; j < n; j++ {
					want += int64(q[j]) * int64(codes[int(r)*n+j])
				}
				if int64(out[i]) != want {
					t.Fatalf("n=%d row %d (idx %d) = %d, want %d", n, r, i, out[i], want)
				}
			}
			if out[len(idx)] != 12345 {
				t.Fatalf("n=%d: out past idx written", n)
			}
		}
	})
}

// TestDotsI8Extremes: the largest sums at MaxDotI8Len (and one byte
// less, a masked tail) on every path, each code pair at its extremes.
func TestDotsI8Extremes(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range []int{MaxDotI8Len, MaxDotI8Len - 1} {
			for _, pair := range [][2]int8{{-128, -128}, {127, -128}, {-128, 127}, {127, 127}} {
				q := make([]int8, n)
				codes := make([]int8, 2*n)
				for i := range q {
					q[i] = pair[0]
				}
				for i := range codes {
					codes[i] = pair[1]
				}
				out := make([]int32, 2)
				DotsI8(out, q, codes, []uint32{1, 0})
				want := int64(n) * int64(pair[0]) * int64(pair[1])
				if int64(out[0]) != want || int64(out[1]) != want {
					t.Fatalf("n=%d codes %v: %v, want %d", n, pair, out, want)
				}
			}
		}
	})
}

// TestDotsI8Panics: a row beyond codes, out shorter than idx and q too
// long panic on every path, and the rows before a bad one are scored.
func TestDotsI8Panics(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		q := make([]int8, 64)
		for i := range q {
			q[i] = 1
		}
		codes := make([]int8, 3*64)
		for i := range codes {
			codes[i] = 2
		}
		for _, c := range []struct {
			name string
			out  []int32
			q    []int8
			idx  []uint32
		}{
			{"row past the end", make([]int32, 3), q, []uint32{1, 3, 0}},
			{"huge row", make([]int32, 2), q, []uint32{0, 1 << 31}},
			{"out too short", make([]int32, 1), q, []uint32{0, 1}},
			{"q too long", make([]int32, 1), make([]int8, MaxDotI8Len+16), []uint32{0}},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("DotsI8 with %s did not panic", c.name)
					}
					if c.name == "row past the end" && c.out[0] != 128 {
						t.Errorf("the row before the bad one: %d, want 128", c.out[0])
					}
				}()
				DotsI8(c.out, c.q, codes, c.idx)
			}()
		}
	})
}

// BenchmarkDotsI8: 24 random rows a call (a graph node's unvisited
// neighbours) out of 20,000, at the dimensions the first stages use.
func BenchmarkDotsI8(b *testing.B) {
	for _, n := range []int{64, 784} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			const rows = 20000
			rng := rand.New(rand.NewPCG(1, 2))
			codes := make([]int8, rows*n)
			for i := range codes {
				codes[i] = int8(rng.IntN(256) - 128)
			}
			q := codes[:n]
			idx := make([]uint32, 24*1024)
			for i := range idx {
				idx[i] = uint32(rng.IntN(rows))
			}
			out := make([]int32, 24)
			i := 0
			for b.Loop() {
				DotsI8(out, q, codes, idx[i:i+24])
				i = (i + 24) % len(idx)
			}
		})
	}
}
