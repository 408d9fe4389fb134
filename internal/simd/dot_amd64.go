//go:build amd64 && !noasm

package simd

// dotAVX512 returns the dot product of the first n elements of a and b, n a
// multiple of 16 (dotAVX2: of 8).
//
//go:noescape
func dotAVX512(a, b *float32, n int) float32

//go:noescape
func dotAVX2(a, b *float32, n int) float32

func dot512(a, b []float32) float32 { return dotBlocks(a, b, 16, dotAVX512) }
func dot256(a, b []float32) float32 { return dotBlocks(a, b, 8, dotAVX2) }

func dotBlocks(a, b []float32, w int, kern func(a, b *float32, n int) float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ (w - 1)
	var s float32
	if n > 0 {
		s = kern(&a[0], &b[0], n)
	}
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}
