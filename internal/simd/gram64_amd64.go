//go:build amd64 && !noasm

package simd

// gram64x4AVX2 sets dst[0..3] to the float64 dot products of the row a
// (float64) with the rows x0..x3 (float32, widened in registers): n4 full
// vectors of 4, then, when rem > 0, one vector of rem elements read
// through the masks m32 and m64 (so nothing past a row is read).
//
//go:noescape
func gram64x4AVX2(dst *float64, a *float64, x0, x1, x2, x3 *float32, n4, rem int, m32 *int32, m64 *int64)

// tailMask32[r] and tailMask64[r] select the first r lanes of 4.
var (
	tailMask32 = [4][4]int32{{}, {-1}, {-1, -1}, {-1, -1, -1}}
	tailMask64 = [4][4]int64{{}, {-1}, {-1, -1}, {-1, -1, -1}}
)

// gram64x8AVX2 is gram64x4AVX2 for two rows a0, a1 at once (into dst0 and
// dst1): each widened item vector serves two rows.
//
//go:noescape
func gram64x8AVX2(dst0, dst1 *float64, a0, a1 *float64, x0, x1, x2, x3 *float32, n4, rem int, m32 *int32, m64 *int64)

// gram64AVX2 runs the kernels on two query rows and four item points at a
// time (an odd last row: one row); a last group of fewer item points
// repeats its last point and keeps only the real entries. Used by the
// avx512 path too. Two rows a call took BenchmarkGram64 (16×16×51) from
// 1,772 ns (one row a call) to 967–1,051 ns.
func gram64AVX2(dst, q []float64, n int, x []float32, m, d int) {
	n4, rem := d>>2, d&3
	m32, m64 := &tailMask32[rem][0], &tailMask64[rem][0]
	var tmp [8]float64
	cols := func(j int) (p [4]*float32) {
		for c := range p {
			p[c] = &x[min(j+c, m-1)*d]
		}
		return p
	}
	i := 0
	for ; i+1 < n; i += 2 {
		a0, a1 := &q[i*d], &q[(i+1)*d]
		r0, r1 := dst[i*m:i*m+m], dst[(i+1)*m:(i+1)*m+m]
		j := 0
		for ; j+4 <= m; j += 4 {
			gram64x8AVX2(&r0[j], &r1[j], a0, a1, &x[j*d], &x[(j+1)*d], &x[(j+2)*d], &x[(j+3)*d], n4, rem, m32, m64)
		}
		if j < m {
			p := cols(j)
			gram64x8AVX2(&tmp[0], &tmp[4], a0, a1, p[0], p[1], p[2], p[3], n4, rem, m32, m64)
			copy(r0[j:], tmp[:m-j])
			copy(r1[j:], tmp[4:4+m-j])
		}
	}
	if i < n {
		a := &q[i*d]
		row := dst[i*m : i*m+m]
		j := 0
		for ; j+4 <= m; j += 4 {
			gram64x4AVX2(&row[j], a, &x[j*d], &x[(j+1)*d], &x[(j+2)*d], &x[(j+3)*d], n4, rem, m32, m64)
		}
		if j < m {
			p := cols(j)
			gram64x4AVX2(&tmp[0], a, p[0], p[1], p[2], p[3], n4, rem, m32, m64)
			copy(row[j:], tmp[:m-j])
		}
	}
}

// gram64x16AVX512 sets, for r < 4, the four float64 at dst + r*ldd bytes
// to the dot products of the row ar (float64) with the rows x0..x3
// (float32, widened in registers): n8 full vectors of 8, then, when mask
// is not zero, one vector of the lanes mask selects (the low d mod 8).
//
//go:noescape
func gram64x16AVX512(dst *float64, ldd int, a0, a1, a2, a3 *float64, x0, x1, x2, x3 *float32, n8, mask int)

// gram64AVX512 runs the kernel on four query rows and four item points at
// a time; a last group of fewer rows or points repeats its last one into
// a scratch block and keeps only the real entries.
func gram64AVX512(dst, q []float64, n int, x []float32, m, d int) {
	n8, mask := d>>3, 1<<(d&7)-1
	var tmp [16]float64
	for i := 0; i < n; i += 4 {
		rows := min(4, n-i)
		var a [4]*float64
		for r := range a {
			a[r] = &q[(i+min(r, rows-1))*d]
		}
		for j := 0; j < m; j += 4 {
			cols := min(4, m-j)
			var p [4]*float32
			for c := range p {
				p[c] = &x[(j+min(c, cols-1))*d]
			}
			if rows == 4 && cols == 4 {
				gram64x16AVX512(&dst[i*m+j], m*8, a[0], a[1], a[2], a[3], p[0], p[1], p[2], p[3], n8, mask)
				continue
			}
			gram64x16AVX512(&tmp[0], 32, a[0], a[1], a[2], a[3], p[0], p[1], p[2], p[3], n8, mask)
			for r := 0; r < rows; r++ {
				copy(dst[(i+r)*m+j:(i+r)*m+j+cols], tmp[r*4:])
			}
		}
	}
}

// norms64AVX512 sets dst[j] to the float64 squared norm of the float32
// row j of x, for m contiguous rows (stride bytes apart) of n8 vectors of
// 8 and a tail of the lanes mask selects.
//
//go:noescape
func norms64AVX512(dst *float64, x *float32, m, n8, mask, stride int)

// norms64AVX2 is norms64AVX512 with vectors of 4 and a tail of rem lanes
// read through m32 (tailMask32[rem]).
//
//go:noescape
func norms64AVX2(dst *float64, x *float32, m, n4, rem int, m32 *int32)

func norms64AVX512Go(dst []float64, x []float32, m, d int) {
	norms64AVX512(&dst[0], &x[0], m, d>>3, 1<<(d&7)-1, d*4)
}

func norms64AVX2Go(dst []float64, x []float32, m, d int) {
	norms64AVX2(&dst[0], &x[0], m, d>>2, d&3, &tailMask32[d&3][0])
}

// dist64Block is the argument block of dist64x16AVX512 (its offsets are
// written in gram64_amd64.s): four query rows and their squared norms,
// the first four item points and theirs, where row r of the result goes,
// and how many groups of four item points to run.
type dist64Block struct {
	a      [4]*float64 // 0
	x      [4]*float32 // 32
	an     [4]float64  // 64
	xn     *float64    // 96: four norms a group
	scale  float64     // 104
	dst    *float32    // 112
	ldd    int         // 120: bytes between result rows
	n8     int         // 128
	mask   int         // 136
	groups int         // 144: ≥ 1
	xstep  int         // 152: bytes from a group's points to the next's
}

// dist64x16AVX512 is gram64x16AVX512 with Dist64's epilogue applied in
// registers, four float32 scale·max(0, an[r] + xn[c] − 2g) per row r, for
// b.groups groups of four item points. It may change b.
//
//go:noescape
func dist64x16AVX512(b *dist64Block)

// dist64AVX512 runs dist64x16AVX512 over blocks of four query rows, each
// call taking every whole group of four item points (one call a group,
// the loop in Go, cost 19% of Dist64 on 16×16 clouds); a last group of
// fewer rows or points repeats its last one into a scratch block and keeps
// only the real entries.
func dist64AVX512(dst []float32, q, qn []float64, n int, x []float32, xn []float64, m, d int, scale float64) {
	if d == 0 {
		dist64Compose(gram64Generic)(dst, q, qn, n, x, xn, m, d, scale)
		return
	}
	var (
		b    dist64Block
		tmp  [16]float32
		tmpn [4]float64
	)
	for i := 0; i < n; i += 4 {
		rows := min(4, n-i)
		j := 0
		if rows == 4 && m >= 4 {
			b = dist64Block{scale: scale, n8: d >> 3, mask: 1<<(d&7) - 1, groups: m / 4, xstep: 16 * d}
			for r := range 4 {
				b.a[r], b.an[r] = &q[(i+r)*d], qn[i+r]
				b.x[r] = &x[r*d]
			}
			b.xn, b.dst, b.ldd = &xn[0], &dst[i*m], m*4
			dist64x16AVX512(&b)
			j = m / 4 * 4
		}
		for ; j < m; j += 4 {
			cols := min(4, m-j)
			b = dist64Block{scale: scale, n8: d >> 3, mask: 1<<(d&7) - 1, groups: 1}
			for r := range 4 {
				b.a[r], b.an[r] = &q[(i+min(r, rows-1))*d], qn[i+min(r, rows-1)]
				b.x[r] = &x[(j+min(r, cols-1))*d]
				tmpn[r] = xn[j+min(r, cols-1)]
			}
			b.xn, b.dst, b.ldd = &tmpn[0], &tmp[0], 16
			dist64x16AVX512(&b)
			for r := 0; r < rows; r++ {
				copy(dst[(i+r)*m+j:(i+r)*m+j+cols], tmp[r*4:])
			}
		}
	}
}
