package pointindex

import (
	"math"
	"math/rand/v2"

	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/internal/simd"
)

// assignChunk is how many points one Gram product assigns: a chunk's
// scores (chunk × k floats) stay within a few megabytes.
const assignChunk = 256

// assign sets out[i] to the centroid (of k unit rows in cents) with the
// largest inner product with point i of the n unit points x, and score[i]
// to that inner product, on up to workers goroutines.
func assign(out []int32, score []float32, x []float32, n int, cents []float32, k, d, workers int) {
	chunks := (n + assignChunk - 1) / assignChunk
	parallel.For(chunks, workers, func(ci int) {
		i0 := ci * assignChunk
		i1 := min(n, i0+assignChunk)
		g := make([]float32, (i1-i0)*k)
		simd.Gram(g, x[i0*d:i1*d], i1-i0, cents, k, d)
		for i := i0; i < i1; i++ {
			row := g[(i-i0)*k : (i-i0+1)*k]
			best, bj := row[0], 0
			for j, v := range row[1:] {
				if v > best {
					best, bj = v, j+1
				}
			}
			out[i] = int32(bj)
			if score != nil {
				score[i] = best
			}
		}
	})
}

// kmeans returns k unit centroids (row-major) of the n unit points x by
// spherical k-means (assignment by the largest inner product, centroids
// renormalized means), started from k distinct sample points, iters
// rounds. An emptied cluster is moved to the point its centroid serves
// worst.
func kmeans(x []float32, n, d, k, iters int, rng *rand.Rand, workers int) []float32 {
	cents := make([]float32, k*d)
	for j, i := range rng.Perm(n)[:k] {
		copy(cents[j*d:(j+1)*d], x[i*d:(i+1)*d])
	}
	lab := make([]int32, n)
	score := make([]float32, n)
	sum := make([]float64, k*d)
	cnt := make([]int, k)
	for it := 0; it < iters; it++ {
		assign(lab, score, x, n, cents, k, d, workers)
		clear(sum)
		clear(cnt)
		for i := 0; i < n; i++ {
			c := int(lab[i])
			cnt[c]++
			s := sum[c*d : (c+1)*d]
			for t, v := range x[i*d : (i+1)*d] {
				s[t] += float64(v)
			}
		}
		for c := 0; c < k; c++ {
			if cnt[c] == 0 {
				// The point worst served by its centroid starts a new one.
				w := 0
				for i := 1; i < n; i++ {
					if score[i] < score[w] {
						w = i
					}
				}
				score[w] = math.MaxFloat32
				copy(cents[c*d:(c+1)*d], x[w*d:(w+1)*d])
				continue
			}
			unit(cents[c*d:(c+1)*d], sum[c*d:(c+1)*d])
		}
	}
	return cents
}

// unit sets dst to v / |v| (v itself when it is zero).
func unit(dst []float32, v []float64) {
	var n2 float64
	for _, x := range v {
		n2 += x * x
	}
	inv := 1.0
	if n2 > 0 {
		inv = 1 / math.Sqrt(n2)
	}
	for i, x := range v {
		dst[i] = float32(x * inv)
	}
}

// normalize writes the unit version of point x to dst (torch's
// F.normalize, as wpcsim does: divide by max(|x|, 1e-12)).
func normalize(dst, x []float32) {
	var n2 float64
	for _, v := range x {
		n2 += float64(v) * float64(v)
	}
	inv := 1 / max(math.Sqrt(n2), 1e-12)
	for i, v := range x {
		dst[i] = float32(float64(v) * inv)
	}
}
