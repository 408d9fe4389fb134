package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// scanNibblesRef is the reference loop of ScanNibbles' doc.
func scanNibblesRef(codes []byte, blocks, nb int, lut []byte, base, step float32) []float32 {
	out := make([]float32, blocks*NibbleBlock)
	for b := 0; b < blocks; b++ {
		for t := 0; t < 64; t++ {
			var s uint16
			for p := 0; p < nb; p++ {
				c := codes[(b*nb+p)*64+t]
				s += uint16(lut[p*32+int(c&15)]) + uint16(lut[p*32+16+int(c>>4)])
			}
			out[b*64+t] = base + float32(step*float32(s))
		}
	}
	return out
}

// TestScanNibbles: every path gives the reference sums exactly, for block
// counts and byte widths around the shapes used (32 bytes: d = 128 at 2
// bits), tables up to the 127 limit, and writes nothing past its blocks.
func TestScanNibbles(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		seed := uint64(8000)
		for _, blocks := range []int{0, 1, 2, 5} {
			for _, nb := range []int{0, 1, 3, 16, 32, 33, 64, MaxNibbleBytes} {
				seed++
				rng := rand.New(rand.NewPCG(seed, 0))
				codes := make([]byte, blocks*nb*64)
				for i := range codes {
					codes[i] = byte(rng.IntN(256))
				}
				lut := make([]byte, nb*32)
				for i := range lut {
					lut[i] = byte(rng.IntN(128))
					if rng.IntN(8) == 0 {
						lut[i] = 127
					}
				}
				out, buf := guarded(blocks*64, int(seed%16))
				base, step := float32(rng.NormFloat64()), float32(rng.Float64()/100)
				ScanNibbles(out, codes, blocks, nb, lut, base, step)
				want := scanNibblesRef(codes, blocks, nb, lut, base, step)
				what := fmt.Sprintf("blocks %d nb %d seed %d", blocks, nb, seed)
				for i, w := range want {
					if math.Float32bits(out[i]) != math.Float32bits(w) {
						t.Fatalf("%s: out[%d] = %v, want %v bit for bit", what, i, out[i], w)
					}
				}
				checkGuards(t, buf, int(seed%16), blocks*64, what)
			}
		}
	})
}

func TestScanNibblesPanics(t *testing.T) {
	big := make([]byte, 32)
	big[5] = 128
	for name, f := range map[string]func(){
		"entry > 127": func() { ScanNibbles(make([]float32, 64), make([]byte, 64), 1, 1, big, 0, 1) },
		"short out":   func() { ScanNibbles(make([]float32, 63), make([]byte, 64), 1, 1, make([]byte, 32), 0, 1) },
		"short codes": func() { ScanNibbles(make([]float32, 64), make([]byte, 63), 1, 1, make([]byte, 32), 0, 1) },
		"short lut":   func() { ScanNibbles(make([]float32, 64), make([]byte, 64), 1, 1, make([]byte, 31), 0, 1) },
		"nb too big":  func() { ScanNibbles(nil, nil, 0, MaxNibbleBytes+1, nil, 0, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// BenchmarkScanNibbles: 1,024 codes of 32 bytes (d = 128 at 2 bits).
func BenchmarkScanNibbles(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 0))
	blocks, nb := 16, 32
	codes := make([]byte, blocks*nb*64)
	for i := range codes {
		codes[i] = byte(rng.IntN(256))
	}
	lut := make([]byte, nb*32)
	for i := range lut {
		lut[i] = byte(rng.IntN(128))
	}
	out := make([]float32, blocks*64)
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			ScanNibbles(out, codes, blocks, nb, lut, 0.5, 0.001)
		}
	})
}
