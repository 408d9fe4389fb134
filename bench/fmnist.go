package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/wpcdb/wpcdb/encoder"
	"github.com/wpcdb/wpcdb/internal/idx"
	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package puts the
// data set.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// MNISTSet is an IDX image set with its labels.
type MNISTSet struct {
	W, H   int
	Images []byte // len(Labels) images of H·W bytes
	Labels []byte
}

// Len is the number of images.
func (s MNISTSet) Len() int { return len(s.Labels) }

// Image returns image i's bytes.
func (s MNISTSet) Image(i int) []byte { return s.Images[i*s.W*s.H : (i+1)*s.W*s.H] }

// LoadMNIST reads prefix-images-idx3-ubyte(.gz) and the labels beside it
// (prefix "train" or "t10k").
func LoadMNIST(dir, prefix string) (MNISTSet, error) {
	find := func(kind string) string {
		for _, name := range []string{prefix + "-" + kind + "-ubyte.gz", prefix + "-" + kind + "-ubyte"} {
			p := filepath.Join(dir, name)
			if fileExists(p) {
				return p
			}
		}
		return filepath.Join(dir, prefix+"-"+kind+"-ubyte.gz")
	}
	dims, img, err := idx.ReadFile(find("images-idx3"))
	if err != nil {
		return MNISTSet{}, fmt.Errorf("%w (install the Debian package dataset-fashion-mnist, or give the directory)", err)
	}
	ldims, lab, err := idx.ReadFile(find("labels-idx1"))
	if err != nil {
		return MNISTSet{}, err
	}
	if len(dims) != 3 || len(ldims) != 1 || dims[0] != ldims[0] {
		return MNISTSet{}, fmt.Errorf("bench: %s: images %v and labels %v do not match", dir, dims, ldims)
	}
	return MNISTSet{H: dims[1], W: dims[2], Images: img, Labels: lab}, nil
}

// CloudSetting is one way of turning images into clouds for k-NN: the
// patch encoder's options, and whether points are L2-normalized (the
// paper's rule) or used raw.
type CloudSetting struct {
	Patch     encoder.PatchOptions `json:"patch"`
	Normalize bool                 `json:"normalize"`
	// Sigmas are the gaussian bandwidths scored for this setting.
	Sigmas []float64 `json:"sigmas"`
}

// ScoreConfig is one similarity on clouds: α·linear + β·gaussian(σ), with a
// score mode, under mean normalization.
type ScoreConfig struct {
	Alpha float64          `json:"alpha"`
	Beta  float64          `json:"beta"`
	Sigma float64          `json:"sigma,omitempty"`
	Mode  wpcsim.ScoreMode `json:"-"`
	sidx  int
}

// Kernel returns the wpcsim kernel spec of c.
func (c ScoreConfig) Kernel() string {
	switch {
	case c.Beta == 0:
		return "linear"
	case c.Alpha == 0:
		return fmt.Sprintf("gaussian(%g)", c.Sigma)
	}
	return fmt.Sprintf("%g*linear+%g*gaussian(%g)", c.Alpha, c.Beta, c.Sigma)
}

// packed is a set of clouds padded to P points each, for blocked scoring.
type packed struct {
	n, p, d int
	pts     []float32 // n·p·d, padding rows zero
	w       []float32 // n·p, padding weight 0
	norm2   []float32 // n·p squared norms
	count   []int     // real points per cloud
	cent    []float32 // n·d: Σ_j w_j x_j (the linear term, exactly)
	selfLin []float64
	selfGau [][]float64 // [σ][cloud]
}

// encodeSet encodes images i of s (the indices given) with the setting.
func encodeSet(s MNISTSet, ids []int, cs CloudSetting) ([]wpcsim.Cloud, error) {
	enc, err := encoder.NewPatch(cs.Patch, nil)
	if err != nil {
		return nil, err
	}
	ins := make([]encoder.Input, len(ids))
	for k, i := range ids {
		ins[k] = encoder.Input{ID: fmt.Sprint(i), Data: encoder.ImageFromBytes(s.W, s.H, s.Image(i))}
	}
	clouds, err := enc.EncodeBatch(ins)
	if err != nil {
		return nil, err
	}
	if cs.Normalize {
		for _, c := range clouds {
			for j := 0; j < c.Len(); j++ {
				p := c.Point(j)
				n := float32(math.Sqrt(float64(simd.Dot(p, p))))
				for k := range p {
					p[k] /= n
				}
			}
		}
	}
	return clouds, nil
}

func pack(clouds []wpcsim.Cloud, sigmas []float64) *packed {
	pk := &packed{n: len(clouds), d: clouds[0].Dim}
	for _, c := range clouds {
		pk.p = max(pk.p, c.Len())
	}
	n, p, d := pk.n, pk.p, pk.d
	pk.pts = make([]float32, n*p*d)
	pk.w = make([]float32, n*p)
	pk.norm2 = make([]float32, n*p)
	pk.count = make([]int, n)
	pk.cent = make([]float32, n*d)
	pk.selfLin = make([]float64, n)
	pk.selfGau = make([][]float64, len(sigmas))
	for s := range sigmas {
		pk.selfGau[s] = make([]float64, n)
	}
	parallel.For(n, 0, func(i int) {
		c := clouds[i]
		pk.count[i] = c.Len()
		copy(pk.pts[i*p*d:], c.Points)
		copy(pk.w[i*p:], c.Weights)
		cent := make([]float64, d)
		for j := 0; j < c.Len(); j++ {
			x := c.Point(j)
			pk.norm2[i*p+j] = simd.Dot(x, x)
			for k, v := range x {
				cent[k] += float64(c.Weights[j]) * float64(v)
			}
		}
		var sl float64
		for k, v := range cent {
			pk.cent[i*d+k] = float32(v)
			sl += v * v
		}
		pk.selfLin[i] = sl
		for s, sigma := range sigmas {
			var g float64
			for a := 0; a < c.Len(); a++ {
				for b := 0; b < c.Len(); b++ {
					var d2 float64
					xa, xb := c.Point(a), c.Point(b)
					for k := range xa {
						e := float64(xa[k]) - float64(xb[k])
						d2 += e * e
					}
					g += float64(c.Weights[a]) * float64(c.Weights[b]) * math.Exp(-d2/(2*sigma*sigma))
				}
			}
			pk.selfGau[s][i] = g
		}
	})
	return pk
}

// neighbours holds, per score config and query, the indices of the K best
// reference items, best first, and the best one's score.
type neighbours struct {
	idx  [][][]int32 // [config][query][rank]
	best [][]float64 // [config][query]
}

const topK = 10

// knnClouds scores every query cloud against every reference cloud exactly
// (the raw kernel sums Σ_i Σ_j v_i w_j k(q_i, x_j), blocked: one Gram per
// block of queries × block of references, then the gaussian map per σ) and
// keeps the topK references of each query under every config.
func knnClouds(ctx context.Context, q, x *packed, sigmas []float64, configs []ScoreConfig, progress func(done int)) (neighbours, error) {
	const bq, bx = 32, 64
	out := neighbours{idx: make([][][]int32, len(configs)), best: make([][]float64, len(configs))}
	for c := range configs {
		out.idx[c] = make([][]int32, q.n)
		out.best[c] = make([]float64, q.n)
	}
	type job struct{ lo, hi int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, d := q.p, q.d
			// Squared distances come straight out of one Gram product of
			// augmented points: [q, |q|², 1]·c[-2x, 1, |x|²] = c·|q - x|²,
			// with c = -1/(2σ²) folded into the reference side.
			da := d + 2
			qa := make([]float32, bq*p*da)
			xa := make([]float32, bx*x.p*da)
			gram := make([]float32, bq*p*bx*x.p)
			acc := make([][]float64, len(sigmas)) // [σ][(query-lo)·x.n + ref]
			for s := range acc {
				acc[s] = make([]float64, bq*x.n)
			}
			lin := make([]float32, bq*x.n)
			scores := make([]float64, x.n)
			for jb := range jobs {
				nq := jb.hi - jb.lo
				for s := range acc {
					clear(acc[s])
				}
				simd.Gram(lin[:nq*x.n], q.cent[jb.lo*d:jb.hi*d], nq, x.cent, x.n, d)
				for r := 0; r < nq*p; r++ {
					copy(qa[r*da:], q.pts[(jb.lo*p+r)*d:(jb.lo*p+r+1)*d])
					qa[r*da+d], qa[r*da+d+1] = q.norm2[jb.lo*p+r], 1
				}
				for xlo := 0; xlo < x.n && len(sigmas) > 0; xlo += bx {
					if ctx.Err() != nil {
						return
					}
					xhi := min(xlo+bx, x.n)
					cols := (xhi - xlo) * x.p
					xw := x.w[xlo*x.p : xhi*x.p]
					for s, sigma := range sigmas {
						c := float32(-1 / (2 * sigma * sigma))
						for j := 0; j < cols; j++ {
							src := x.pts[(xlo*x.p+j)*d : (xlo*x.p+j+1)*d]
							dst := xa[j*da : (j+1)*da]
							for k, v := range src {
								dst[k] = -2 * c * v
							}
							dst[d], dst[d+1] = c, c*x.norm2[xlo*x.p+j]
						}
						simd.Gram(gram[:nq*p*cols], qa[:nq*p*da], nq*p, xa[:cols*da], cols, da)
						for r := 0; r < nq*p; r++ {
							v := float64(q.w[jb.lo*p+r])
							if v == 0 {
								continue // padding
							}
							row := gram[r*cols : (r+1)*cols]
							for k, e := range row {
								row[k] = min(e, 0) // rounding can make a distance < 0
							}
							simd.Exp(row, row)
							a := r / p
							dst := acc[s][a*x.n+xlo : a*x.n+xhi]
							for b := range dst {
								dst[b] += v * float64(simd.Dot(xw[b*x.p:(b+1)*x.p], row[b*x.p:(b+1)*x.p]))
							}
						}
					}
				}
				for a := 0; a < nq; a++ {
					qi := jb.lo + a
					for ci, cfg := range configs {
						for j := 0; j < x.n; j++ {
							sl := float64(lin[a*x.n+j])
							g := cfg.Alpha * sl
							self := cfg.Alpha * q.selfLin[qi]
							xself := cfg.Alpha * x.selfLin[j]
							if cfg.Beta != 0 {
								g += cfg.Beta * acc[cfg.sidx][a*x.n+j]
								self += cfg.Beta * q.selfGau[cfg.sidx][qi]
								xself += cfg.Beta * x.selfGau[cfg.sidx][j]
							}
							nq, nx := float64(q.count[qi]), float64(x.count[j])
							switch cfg.Mode {
							case wpcsim.ScoreCosine:
								scores[j] = wpcsim.Cosine(g, wpcsim.Self{G: self}, wpcsim.Self{G: xself})
							case wpcsim.ScoreMMD:
								// Ranked by -MMD² (mean normalization).
								scores[j] = -(self/(nq*nq) + xself/(nx*nx) - 2*g/(nq*nx))
							default:
								scores[j] = g / (nq * nx)
							}
						}
						top := topIndices(scores, topK)
						out.idx[ci][qi], out.best[ci][qi] = top, scores[top[0]]
					}
				}
				mu.Lock()
				done += nq
				if progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	for lo := 0; lo < q.n; lo += bq {
		select {
		case jobs <- job{lo, min(lo+bq, q.n)}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return neighbours{}, ctx.Err()
	}
	return out, nil
}

// topIndices returns the indices of the k largest scores, best first (ties:
// lower index first).
func topIndices(s []float64, k int) []int32 {
	top := make([]int32, 0, k+1)
	for j, v := range s {
		if len(top) == k && v <= s[top[k-1]] {
			continue
		}
		pos := len(top)
		for pos > 0 && v > s[top[pos-1]] {
			pos--
		}
		top = slices.Insert(top, pos, int32(j))
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// knnPixels is cosine k-NN on raw pixel vectors.
func knnPixels(ctx context.Context, test MNISTSet, qids []int, train MNISTSet, xids []int) ([][]int32, error) {
	d := test.W * test.H
	unit := func(s MNISTSet, ids []int) []float32 {
		out := make([]float32, len(ids)*d)
		for k, i := range ids {
			var n2 float64
			for _, b := range s.Image(i) {
				n2 += float64(b) * float64(b)
			}
			inv := 1 / max(math.Sqrt(n2), 1e-12)
			for t, b := range s.Image(i) {
				out[k*d+t] = float32(float64(b) * inv)
			}
		}
		return out
	}
	qv, xv := unit(test, qids), unit(train, xids)
	out := make([][]int32, len(qids))
	const bq = 64
	var firstErr error
	var mu sync.Mutex
	parallel.For((len(qids)+bq-1)/bq, 0, func(blk int) {
		if ctx.Err() != nil {
			mu.Lock()
			firstErr = ctx.Err()
			mu.Unlock()
			return
		}
		lo, hi := blk*bq, min((blk+1)*bq, len(qids))
		g := make([]float32, (hi-lo)*len(xids))
		simd.Gram(g, qv[lo*d:hi*d], hi-lo, xv, len(xids), d)
		s := make([]float64, len(xids))
		for a := lo; a < hi; a++ {
			for j := range s {
				s[j] = float64(g[(a-lo)*len(xids)+j])
			}
			out[a] = topIndices(s, topK)
		}
	})
	return out, firstErr
}

// vote is the k-NN decision: the majority label among the first k
// neighbours, a tie going to the tied label whose nearest member ranks
// highest.
func vote(nb []int32, labels []byte, k int) byte {
	var count [256]int
	best, bestN := labels[nb[0]], 0
	for r := 0; r < min(k, len(nb)); r++ {
		count[labels[nb[r]]]++
	}
	for r := 0; r < min(k, len(nb)); r++ {
		l := labels[nb[r]]
		if count[l] > bestN {
			best, bestN = l, count[l]
		}
	}
	return best
}

// accuracy of the k-NN votes: nb[i] are query i's neighbours as indices
// into refIDs.
func accuracy(nb [][]int32, qlabels []byte, reflabels []byte, k int) float64 {
	correct := 0
	for i, n := range nb {
		if vote(n, reflabels, k) == qlabels[i] {
			correct++
		}
	}
	return float64(correct) / float64(len(nb))
}

func labelsOf(s MNISTSet, ids []int) []byte {
	out := make([]byte, len(ids))
	for k, i := range ids {
		out[k] = s.Labels[i]
	}
	return out
}

func seq(lo, hi int) []int {
	out := make([]int, hi-lo)
	for i := range out {
		out[i] = lo + i
	}
	return out
}

// scoreConfigs lists the similarities scored for a setting: linear alone
// and, per σ, gaussian alone and the paper's 0.667·linear + 0.333·gaussian,
// each in the three score modes.
func scoreConfigs(sigmas []float64) []ScoreConfig {
	var out []ScoreConfig
	modes := []wpcsim.ScoreMode{wpcsim.ScoreCosine, wpcsim.ScoreInner, wpcsim.ScoreMMD}
	for _, m := range modes {
		out = append(out, ScoreConfig{Alpha: 1, Mode: m})
	}
	for s, sigma := range sigmas {
		for _, m := range modes {
			out = append(out, ScoreConfig{Beta: 1, Sigma: sigma, Mode: m, sidx: s})
			out = append(out, ScoreConfig{Alpha: 0.667, Beta: 0.333, Sigma: sigma, Mode: m, sidx: s})
		}
	}
	return out
}

// elapsed is a helper for reports.
func elapsed(t time.Time) float64 { return math.Round(time.Since(t).Seconds()*10) / 10 }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
