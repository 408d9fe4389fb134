//go:build amd64 && !noasm

package simd

//go:noescape
func rsqrtAVX512(dst, src *float32, n int)

//go:noescape
func rsqrtAVX2(dst, src *float32, n int)

func rsqrt512(dst, src []float32) { expBlocks(dst, src, 16, rsqrtAVX512) }
func rsqrt256(dst, src []float32) { expBlocks(dst, src, 8, rsqrtAVX2) }
