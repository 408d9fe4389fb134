//go:build amd64 && !noasm

package simd

// cosAddAVX512 computes n/16 blocks of 16, cosAddAVX2 n/8 blocks of 8; both
// return nonzero if some lane was out of range (|x| > CosMax or NaN), which
// the caller then redoes with cosFixup.
//
//go:noescape
func cosAddAVX512(dst, p, b *float32, n int, w float32, acc bool) (bad int)

//go:noescape
func cosAddAVX2(dst, p, b *float32, n int, w float32, acc bool) (bad int)

// The wrappers call the assembly directly, as exp512 does, so the tail
// buffers stay on the stack.

func cosAdd512(dst, p, b []float32, w float32, acc bool) {
	n := len(p) &^ 15
	bad := 0
	if n > 0 {
		bad = cosAddAVX512(&dst[0], &p[0], &b[0], n, w, acc)
	}
	if t := len(p) - n; t > 0 {
		var pt, bt, dt [16]float32
		copy(pt[:], p[n:])
		copy(bt[:], b[n:len(p)])
		copy(dt[:], dst[n:len(p)])
		bad |= cosAddAVX512(&dt[0], &pt[0], &bt[0], 16, w, acc)
		copy(dst[n:len(p)], dt[:t])
	}
	if bad != 0 {
		cosFixup(dst, p, b, w, acc)
	}
}

func cosAdd256(dst, p, b []float32, w float32, acc bool) {
	n := len(p) &^ 7
	bad := 0
	if n > 0 {
		bad = cosAddAVX2(&dst[0], &p[0], &b[0], n, w, acc)
	}
	if t := len(p) - n; t > 0 {
		var pt, bt, dt [8]float32
		copy(pt[:], p[n:])
		copy(bt[:], b[n:len(p)])
		copy(dt[:], dst[n:len(p)])
		bad |= cosAddAVX2(&dt[0], &pt[0], &bt[0], 8, w, acc)
		copy(dst[n:len(p)], dt[:t])
	}
	if bad != 0 {
		cosFixup(dst, p, b, w, acc)
	}
}
