package pointindex

import (
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
)

func BenchmarkDot(b *testing.B) {
	table := make([]float32, 32*256)
	for i := range table {
		table[i] = float32(i%97) * 0.01
	}
	codes := make([]byte, 32*1024)
	for i := range codes {
		codes[i] = byte(i * 7919 >> 3)
	}
	var s float32
	for b.Loop() {
		for t := 0; t < 1024; t++ {
			s += dot(table, codes[t*32:(t+1)*32])
		}
	}
	_ = s
}

func BenchmarkDot32(b *testing.B) {
	table := make([]float32, 32*256)
	for i := range table {
		table[i] = float32(i%97) * 0.01
	}
	codes := make([]byte, 32*1024)
	for i := range codes {
		codes[i] = byte(i * 7919 >> 3)
	}
	var s float32
	tb := (*[32 * 256]float32)(table)
	for b.Loop() {
		for t := 0; t < 1024; t++ {
			s += dot32(tb, (*[32]byte)(codes[t*32:(t+1)*32]))
		}
	}
	_ = s
}

// TestDotUnrolled: dot16 and dot32 give dot's sums bit for bit (the same
// additions in the same order), on seeded random tables and codes.
func TestDotUnrolled(t *testing.T) {
	rng := wpctest.NewRand(4)
	table := make([]float32, 32*256)
	for i := range table {
		table[i] = float32(rng.NormFloat64())
	}
	code := make([]byte, 32)
	for range 1000 {
		for i := range code {
			code[i] = byte(rng.IntN(256))
		}
		if a, b := dot32((*[32 * 256]float32)(table), (*[32]byte)(code)), dot(table, code); a != b {
			t.Fatalf("dot32 %v, dot %v", a, b)
		}
		if a, b := dot16((*[16 * 256]float32)(table), (*[16]byte)(code)), dot(table[:16*256], code[:16]); a != b {
			t.Fatalf("dot16 %v, dot %v", a, b)
		}
	}
}
