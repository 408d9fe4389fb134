package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// scanNibblesRef is the reference loop of ScanNibbles' doc.
func scanNibblesRef(codes []byte, blocks, nb int, lut []byte) []uint16 {
	out := make([]uint16, blocks*NibbleBlock)
	for b := 0; b < blocks; b++ {
		for t := 0; t < 64; t++ {
			var s uint16
			for p := 0; p < nb; p++ {
				c := codes[(b*nb+p)*64+t]
				s += uint16(lut[p*32+int(c&15)]) + uint16(lut[p*32+16+int(c>>4)])
			}
			out[b*64+t] = s
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
				out := make([]uint16, blocks*64+8)
				for i := range out {
					out[i] = 0xBEEF
				}
				ScanNibbles(out, codes, blocks, nb, lut)
				want := scanNibblesRef(codes, blocks, nb, lut)
				what := fmt.Sprintf("blocks %d nb %d seed %d", blocks, nb, seed)
				for i, w := range want {
					if out[i] != w {
						t.Fatalf("%s: out[%d] = %d, want %d", what, i, out[i], w)
					}
				}
				for i := blocks * 64; i < len(out); i++ {
					if out[i] != 0xBEEF {
						t.Fatalf("%s: out[%d] written past the blocks", what, i)
					}
				}
			}
		}
	})
}

func TestScanNibblesPanics(t *testing.T) {
	big := make([]byte, 32)
	big[5] = 128
	for name, f := range map[string]func(){
		"entry > 127": func() { ScanNibbles(make([]uint16, 64), make([]byte, 64), 1, 1, big) },
		"short out":   func() { ScanNibbles(make([]uint16, 63), make([]byte, 64), 1, 1, make([]byte, 32)) },
		"short codes": func() { ScanNibbles(make([]uint16, 64), make([]byte, 63), 1, 1, make([]byte, 32)) },
		"short lut":   func() { ScanNibbles(make([]uint16, 64), make([]byte, 64), 1, 1, make([]byte, 31)) },
		"nb too big":  func() { ScanNibbles(nil, nil, 0, MaxNibbleBytes+1, nil) },
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
	out := make([]uint16, blocks*64)
	benchPaths(b, func(b *testing.B) {
		for b.Loop() {
			ScanNibbles(out, codes, blocks, nb, lut)
		}
	})
}
