package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGram64 compares Gram64 with the float64 oracle on every path, on
// shapes covering the kernels' tails (n and m not multiples of 4, every d
// mod 8, so each masked tail of the AVX2 and AVX-512 kernels), with NaN
// around every operand: a kernel reading past a row or writing past dst
// fails.
func TestGram64(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(6464, 0)) // fixed seed
		nan64 := math.NaN()
		for _, d := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 51, 64} {
			for n := 0; n <= 9; n++ {
				for m := 0; m <= 9; m++ {
					xw, _ := guarded(m*d, d%5)
					fill(rng, xw, -40, 40)
					qbuf := make([]float64, guardLen+n*d+guardLen)
					dbuf := make([]float64, guardLen+n*m+guardLen)
					for i := range qbuf {
						qbuf[i] = nan64
					}
					for i := range dbuf {
						dbuf[i] = -7
					}
					q := qbuf[guardLen : guardLen+n*d]
					for i := range q {
						q[i] = float64(float32(rng.Float64()*80 - 40))
					}
					dst := dbuf[guardLen : guardLen+n*m]
					Gram64(dst, q, n, xw, m, d)
					for i, v := range dbuf {
						if (i < guardLen || i >= guardLen+n*m) && v != -7 {
							t.Fatalf("n=%d m=%d d=%d: dst guard overwritten at %d", n, m, d, i)
						}
					}
					for i := 0; i < n; i++ {
						for j := 0; j < m; j++ {
							var want, abs float64
							for k := 0; k < d; k++ {
								p := q[i*d+k] * float64(xw[j*d+k])
								want += p
								abs += math.Abs(p)
							}
							if got := dst[i*m+j]; !(math.Abs(got-want) <= 1e-14*abs) {
								t.Fatalf("n=%d m=%d d=%d: [%d,%d] = %v, want %v", n, m, d, i, j, got, want)
							}
						}
					}
				}
			}
		}
	})
}

// TestNorms64 compares Norms64 with the float64 oracle on every path, for
// every d mod 8 and rows guarded by NaN on both sides; a NaN or ±Inf
// coordinate must give a non-finite norm (Cloud validation relies on it).
func TestNorms64(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(6465, 0)) // fixed seed
		for _, d := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 51, 64} {
			for m := 0; m <= 10; m++ {
				xw, xbuf := guarded(m*d, d%3)
				fill(rng, xw, -1e3, 1e3)
				dbuf := make([]float64, guardLen+m+guardLen)
				for i := range dbuf {
					dbuf[i] = -7
				}
				dst := dbuf[guardLen : guardLen+m]
				Norms64(dst, xw, m, d)
				checkGuards(t, xbuf, d%3, m*d, "x")
				for i, v := range dbuf {
					if (i < guardLen || i >= guardLen+m) && v != -7 {
						t.Fatalf("m=%d d=%d: dst guard overwritten at %d", m, d, i)
					}
				}
				for j := 0; j < m; j++ {
					var want float64
					for _, v := range xw[j*d : j*d+d] {
						want += float64(v) * float64(v)
					}
					if got := dst[j]; !(math.Abs(got-want) <= 1e-14*want) {
						t.Fatalf("m=%d d=%d: row %d = %v, want %v", m, d, j, got, want)
					}
				}
				if m == 0 || d == 0 {
					continue
				}
				for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
					k := rng.IntN(m * d)
					saved := xw[k]
					xw[k] = bad
					Norms64(dst, xw, m, d)
					if v := dst[k/d]; !math.IsNaN(v) && !math.IsInf(v, 0) {
						t.Fatalf("m=%d d=%d: %v at %d gives the finite norm %v", m, d, bad, k, v)
					}
					xw[k] = saved
				}
			}
		}
	})
}

// TestDist64 compares Dist64 with the float64 oracle on every path, on
// the shapes of TestGram64, with guard bands around dst, a query row whose
// norm is given as 0 (so negative distances must clamp to 0), and a NaN in
// a query row and in an item point (their row and column must be NaN, the
// rest untouched).
func TestDist64(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(6466, 0)) // fixed seed
		for _, d := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 51, 64} {
			for n := 0; n <= 9; n++ {
				for m := 0; m <= 9; m++ {
					for _, nan := range []bool{false, true} {
						if nan && (n == 0 || m == 0 || d == 0) {
							continue
						}
						x := make([]float32, m*d)
						fill(rng, x, -40, 40)
						q := make([]float64, n*d)
						for i := range q {
							q[i] = float64(float32(rng.Float64()*80 - 40))
						}
						qn, xn := make([]float64, n), make([]float64, m)
						for i := 0; i < n; i++ {
							for _, v := range q[i*d : i*d+d] {
								qn[i] += v * v
							}
						}
						for j := 0; j < m; j++ {
							for _, v := range x[j*d : j*d+d] {
								xn[j] += float64(v) * float64(v)
							}
						}
						if n > 0 {
							qn[0] = 0
						}
						nanRow, nanCol := -1, -1
						if nan {
							nanRow, nanCol = rng.IntN(n), rng.IntN(m)
							q[nanRow*d+rng.IntN(d)] = math.NaN()
							x[nanCol*d+rng.IntN(d)] = float32(math.NaN())
						}
						const scale = -0.03125
						dst, buf := guarded(n*m, (n+m)%3)
						Dist64(dst, q, qn, n, x, xn, m, d, scale)
						checkGuards(t, buf, (n+m)%3, n*m, "dst")
						for i := 0; i < n; i++ {
							for j := 0; j < m; j++ {
								got := dst[i*m+j]
								if i == nanRow || j == nanCol {
									if got == got {
										t.Fatalf("n=%d m=%d d=%d: [%d,%d] = %v, want NaN", n, m, d, i, j, got)
									}
									continue
								}
								var g, abs float64
								for k := 0; k < d; k++ {
									p := q[i*d+k] * float64(x[j*d+k])
									g += p
									abs += math.Abs(p)
								}
								v := qn[i] + xn[j] - 2*g
								want := scale * max(v, 0)
								tol := 1e-7*math.Abs(want) + math.Abs(scale)*4e-14*(abs+qn[i]+xn[j])
								if !(math.Abs(float64(got)-want) <= tol) || (v <= 0 && got != 0) {
									t.Fatalf("n=%d m=%d d=%d: [%d,%d] = %v, want %v", n, m, d, i, j, got, want)
								}
							}
						}
					}
				}
			}
		}
	})
}

func BenchmarkDist64(b *testing.B) {
	const n, m, d = 16, 16, 51
	rng := rand.New(rand.NewPCG(1, 0))
	q := make([]float64, n*d)
	x := make([]float32, m*d)
	for i := range q {
		q[i] = rng.Float64()
	}
	fill(rng, x, 0, 1)
	qn, xn := make([]float64, n), make([]float64, m)
	dst := make([]float32, n*m)
	for _, name := range allPaths {
		b.Run(name, func(b *testing.B) {
			saved := active
			defer func() { active = saved }()
			if !setPath(name) {
				b.Skip("unsupported")
			}
			for b.Loop() {
				Dist64(dst, q, qn, n, x, xn, m, d, -0.5)
			}
		})
	}
}

func BenchmarkNorms64(b *testing.B) {
	const m, d = 16, 51
	rng := rand.New(rand.NewPCG(1, 0))
	x := make([]float32, m*d)
	fill(rng, x, 0, 1)
	dst := make([]float64, m)
	for _, name := range allPaths {
		b.Run(name, func(b *testing.B) {
			saved := active
			defer func() { active = saved }()
			if !setPath(name) {
				b.Skip("unsupported")
			}
			for b.Loop() {
				Norms64(dst, x, m, d)
			}
		})
	}
}

func BenchmarkGram64(b *testing.B) {
	const n, m, d = 16, 16, 51
	rng := rand.New(rand.NewPCG(1, 0))
	q := make([]float64, n*d)
	x := make([]float32, m*d)
	for i := range q {
		q[i] = rng.Float64()
	}
	fill(rng, x, 0, 1)
	dst := make([]float64, n*m)
	for _, name := range allPaths {
		b.Run(name, func(b *testing.B) {
			saved := active
			defer func() { active = saved }()
			if !setPath(name) {
				b.Skip("unsupported")
			}
			for b.Loop() {
				Gram64(dst, q, n, x, m, d)
			}
		})
	}
}
