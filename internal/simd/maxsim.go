package simd

import "math"

// MaxSimQuery is a query point set packed for MaxSim: its rows as given
// (the generic path's) and the same values in blocks of 16 rows ("lanes"),
// k-major (block b, depth k, lane l at b·16·d + k·16 + l, zero past the
// last row), the layout the assembly kernels broadcast item coordinates
// against. Pack it once per query; it is read-only afterwards, so one
// MaxSimQuery may serve concurrent MaxSim calls.
type MaxSimQuery struct {
	n, d   int
	rows   []float32
	packed []float32
}

// maxSimLanes is the packed block height.
const maxSimLanes = 16

// Pack sets mq to the n×d row-major points q (reusing mq's memory). It
// panics if a dimension is negative or q is shorter than n·d.
func (mq *MaxSimQuery) Pack(q []float32, n, d int) {
	if n < 0 || d < 0 {
		panic("simd: MaxSimQuery.Pack with a negative dimension")
	}
	if len(q) < n*d {
		panic("simd: MaxSimQuery.Pack slice shorter than its matrix")
	}
	mq.n, mq.d = n, d
	mq.rows = append(mq.rows[:0], q[:n*d]...)
	lanes := mq.Lanes()
	if cap(mq.packed) < lanes*d {
		mq.packed = make([]float32, lanes*d)
	}
	mq.packed = mq.packed[:lanes*d]
	clear(mq.packed)
	for i := 0; i < n; i++ {
		b, l := i/maxSimLanes, i%maxSimLanes
		blk := mq.packed[b*maxSimLanes*d : (b+1)*maxSimLanes*d]
		for k, v := range q[i*d : (i+1)*d] {
			blk[k*maxSimLanes+l] = v
		}
	}
}

// Len is the number of query points.
func (mq *MaxSimQuery) Len() int { return mq.n }

// Dim is the query's dimension.
func (mq *MaxSimQuery) Dim() int { return mq.d }

// Lanes is n rounded up to a multiple of 16: the length MaxSim's dst
// needs.
func (mq *MaxSimQuery) Lanes() int {
	return (mq.n + maxSimLanes - 1) / maxSimLanes * maxSimLanes
}

// MaxSim sets dst[i] to the best scaled inner product of query point i
// with the m×d row-major points x: max_j <q_i, x_j>·inv[j] (inv nil
// meaning 1), for i < q.Len(); m = 0 gives −Inf. dst must hold q.Lanes()
// floats (the entries past Len are scratch). It panics if a slice is
// shorter than its matrix or m is negative. dst must not overlap x or inv.
// Safe for concurrent use; allocates nothing. This is MaxSim's fused
// Gram-and-max: no Gram matrix is written, and the query is packed once
// for every item scored against it.
//
// The reference loop (the generic path's dot adds in 4 partial sums):
//
//	for i := 0; i < n; i++ {
//		best := float32(math.Inf(-1))
//		for j := 0; j < m; j++ {
//			var s float32
//			for k := 0; k < d; k++ {
//				s += q[i*d+k] * x[j*d+k]
//			}
//			if inv != nil {
//				s *= inv[j]
//			}
//			best = max(best, s)
//		}
//		dst[i] = best
//	}
//
// The assembly paths sum each inner product by FMA in k order (the Gram
// kernels' order for d ≤ 256) and agree with an exact sum to about
// 1e-6·Σ_k |q_ik·x_jk| (times inv[j]); a NaN product (from infinite
// partial sums) gives an unspecified entry.
func MaxSim(dst []float32, q *MaxSimQuery, x []float32, m int, inv []float32) {
	if m < 0 {
		panic("simd: MaxSim with a negative dimension")
	}
	if len(dst) < q.Lanes() || len(x) < m*q.d || (inv != nil && len(inv) < m) {
		panic("simd: MaxSim slice shorter than its matrix")
	}
	lanes := dst[:q.Lanes()]
	inf := float32(math.Inf(-1))
	for i := range lanes {
		lanes[i] = inf
	}
	if q.n == 0 || m == 0 {
		return
	}
	if q.d == 0 {
		clear(lanes)
		return
	}
	active.maxSim(lanes, q, x, m, inv)
}

func maxSimGeneric(dst []float32, q *MaxSimQuery, x []float32, m int, inv []float32) {
	d := q.d
	for i := 0; i < q.n; i++ {
		qi := q.rows[i*d : (i+1)*d]
		best := dst[i]
		for j := 0; j < m; j++ {
			s := dotGeneric(qi, x[j*d:(j+1)*d])
			if inv != nil {
				s *= inv[j]
			}
			if !(best > s) { // as VMAXPS(best, s): s unless best is larger
				best = s
			}
		}
		dst[i] = best
	}
}
