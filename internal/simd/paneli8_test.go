package simd

import (
	"math/rand/v2"
	"testing"
)

// TestPanelI8: every path equals the reference loop (int64 sums) on random
// codes, on the extremes (q = 255 against codes of -128 and 127, the
// largest sums), across group and panel counts around the kernel's
// two-group step, and writes only its npanels·16 outputs.
func TestPanelI8(t *testing.T) {
	const seed = 31
	t.Logf("seed %d", seed)
	forEachPath(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(seed, 1))
		for _, groups := range []int{0, 1, 2, 3, 16, 17, 196, 256} {
			for _, np := range []int{0, 1, 2, 5} {
				for trial := 0; trial < 3; trial++ {
					q := make([]uint8, 4*groups)
					p := make([]int8, np*groups*64)
					for i := range q {
						q[i] = uint8(rng.IntN(256))
					}
					for i := range p {
						p[i] = int8(rng.IntN(256) - 128)
					}
					if trial == 1 { // the extremes
						for i := range q {
							q[i] = 255
						}
						for i := range p {
							p[i] = -128
							if i%3 == 0 {
								p[i] = 127
							}
						}
					}
					out := make([]int32, np*16+3)
					for i := range out {
						out[i] = -7
					}
					PanelI8(out, q, p, groups, np)
					for pi := 0; pi < np; pi++ {
						for l := 0; l < 16; l++ {
							var want int64
							for g := 0; g < groups; g++ {
								for j := 0; j < 4; j++ {
									want += int64(q[4*g+j]) * int64(p[pi*groups*64+g*64+l*4+j])
								}
							}
							if got := out[pi*16+l]; int64(got) != want {
								t.Fatalf("groups %d panels %d trial %d: out[%d][%d] = %d, want %d", groups, np, trial, pi, l, got, want)
							}
						}
					}
					for i := np * 16; i < len(out); i++ {
						if out[i] != -7 {
							t.Fatalf("groups %d panels %d: wrote out[%d] beyond the panels", groups, np, i)
						}
					}
				}
			}
		}
	})
	defer func() {
		if recover() == nil {
			t.Fatal("a short panel slice did not panic")
		}
	}()
	PanelI8(make([]int32, 16), make([]uint8, 4), make([]int8, 63), 1, 1)
}
