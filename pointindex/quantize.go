package pointindex

import (
	"math"
	"slices"
)

// quantizer codes a residual r = x̂ − c (a unit point minus its centroid)
// with bits per dimension: per dimension, 2^bits buckets cut at the
// quantiles of the training residuals, each decoded to the mean of the
// training values that fell in it (ColBERTv2's scheme, per dimension
// rather than global). Codes are packed perByte dimensions to a byte,
// dimension p·perByte+t in bits [t·bits, (t+1)·bits) of byte p; dimensions
// past d (padding of the last byte) have code 0 and decode to 0.
type quantizer struct {
	d, bits, perByte, nbytes, levels int
	cut                              []float32 // d × (levels−1), ascending per dimension
	val                              []float32 // d × levels
}

func newQuantizer(d, bits int) quantizer {
	per := 8 / bits
	return quantizer{d: d, bits: bits, perByte: per, nbytes: (d + per - 1) / per, levels: 1 << bits,
		cut: make([]float32, d*((1<<bits)-1)), val: make([]float32, d*(1<<bits))}
}

// train fits the buckets to n residuals of dimension d (row-major).
func (qz *quantizer) train(resid []float32, n int) {
	col := make([]float32, n)
	L := qz.levels
	for k := 0; k < qz.d; k++ {
		for i := 0; i < n; i++ {
			col[i] = resid[i*qz.d+k]
		}
		slices.Sort(col)
		cut := qz.cut[k*(L-1) : (k+1)*(L-1)]
		for l := range cut {
			cut[l] = col[min(n-1, (l+1)*n/L)]
		}
		val := qz.val[k*L : (k+1)*L]
		lo := 0
		for l := 0; l < L; l++ {
			hi := n
			if l < L-1 {
				hi = (l + 1) * n / L
			}
			if hi > lo {
				var s float64
				for _, v := range col[lo:hi] {
					s += float64(v)
				}
				val[l] = float32(s / float64(hi-lo))
			} else if l > 0 {
				val[l] = val[l-1]
			}
			lo = hi
		}
	}
}

// code is the bucket of value v in dimension k.
func (qz *quantizer) code(k int, v float32) byte {
	L := qz.levels
	cut := qz.cut[k*(L-1) : (k+1)*(L-1)]
	var c byte
	for _, t := range cut {
		if v >= t {
			c++
		}
	}
	return c
}

// encode appends r's code (nbytes) to dst and returns the decoding error
// |r − r̂|.
func (qz *quantizer) encode(dst []byte, r []float32) ([]byte, float32) {
	var e2 float64
	for p := 0; p < qz.nbytes; p++ {
		var b byte
		for t := 0; t < qz.perByte; t++ {
			k := p*qz.perByte + t
			if k >= qz.d {
				break
			}
			c := qz.code(k, r[k])
			b |= c << (t * qz.bits)
			e := float64(r[k] - qz.val[k*qz.levels+int(c)])
			e2 += e * e
		}
		dst = append(dst, b)
	}
	return dst, float32(math.Sqrt(e2))
}

// table fills dst (nbytes × 256) with the decoded residual's inner product
// with q for every byte value: <q, r̂> = Σ_p dst[p·256 + code[p]]. Each
// byte's row is the sum of its low and high nibble's partial products (for
// 2 bits, a nibble holds two dimensions): 256 additions per byte, once per
// query point; each posting then costs nbytes lookups instead of d
// multiply-adds.
func (qz *quantizer) table(dst, q []float32) []float32 {
	dst = slices.Grow(dst[:0], qz.nbytes*256)[:qz.nbytes*256]
	var lo, hi [16]float32
	for p := 0; p < qz.nbytes; p++ {
		qz.nibble(&lo, q, p*qz.perByte)
		qz.nibble(&hi, q, p*qz.perByte+qz.perByte/2)
		row := dst[p*256 : (p+1)*256]
		for h := 0; h < 16; h++ {
			for l := 0; l < 16; l++ {
				row[h<<4|l] = lo[l] + hi[h]
			}
		}
	}
	return dst
}

// nibbleLUT fills dst (nbytes × 32) with q's nibble tables for
// simd.ScanNibbles, quantized: byte p's low nibble table at p·32, its high
// one at p·32 + 16, each entry (partial − min of its table)/step rounded,
// with one step for all tables so that the largest spans 0..127. Then
// <q, r̂> ≈ base + step·ScanNibbles' sum, within nbytes·step (2·nbytes
// lookups, each rounded by at most step/2). The estimate only ranks
// candidates for the exact rerank. tabs is scratch (returned for reuse).
func (qz *quantizer) nibbleLUT(dst []byte, q []float32, tabs []float32) (lut []byte, base, step float32, scratch []float32) {
	n := qz.nbytes * 32
	dst = slices.Grow(dst[:0], n)[:n]
	tabs = slices.Grow(tabs[:0], n)[:n]
	var span float32
	for j := 0; j < 2*qz.nbytes; j++ {
		t := (*[16]float32)(tabs[j*16:])
		qz.nibble(t, q, j/2*qz.perByte+j%2*(qz.perByte/2))
		lo, hi := t[0], t[0]
		for _, v := range t[1:] {
			lo, hi = min(lo, v), max(hi, v)
		}
		span = max(span, hi-lo)
	}
	var inv float32
	if span > 0 {
		step, inv = span/127, 127/span
	}
	for j := 0; j < 2*qz.nbytes; j++ {
		t := tabs[j*16 : j*16+16]
		lo := t[0]
		for _, v := range t[1:] {
			lo = min(lo, v)
		}
		base += lo
		row := dst[j*16 : j*16+16]
		for i, v := range t {
			row[i] = byte(min(127, int((v-lo)*inv+0.5)))
		}
	}
	return dst, base, step, tabs
}

// nibble sets half[n] to q's partial product with nibble value n of
// dimensions k0, k0+1, … (perByte/2 of them; 0 past d).
func (qz *quantizer) nibble(half *[16]float32, q []float32, k0 int) {
	L := qz.levels
	for n := 0; n < 16; n++ {
		var s float32
		for t := 0; t < qz.perByte/2; t++ {
			k := k0 + t
			c := (n >> (t * qz.bits)) & (L - 1)
			if k < qz.d {
				s += q[k] * qz.val[k*L+c]
			}
		}
		half[n] = s
	}
}

// dot is <q, r̂> from q's table and a code: four independent sums, so
// that the lookups overlap.
func dot(table []float32, code []byte) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+3 < len(code); i += 4 {
		c := code[i : i+4 : i+4]
		t := table[i<<8 : (i+4)<<8 : (i+4)<<8]
		s0 += t[c[0]]
		s1 += t[256|int(c[1])]
		s2 += t[512|int(c[2])]
		s3 += t[768|int(c[3])]
	}
	for ; i < len(code); i++ {
		s0 += table[i<<8|int(code[i])]
	}
	return (s0 + s1) + (s2 + s3)
}
