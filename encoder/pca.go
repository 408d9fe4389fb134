package encoder

import (
	"fmt"
	"math"
	"slices"
)

// NewFitter starts fitting the PCA of patches: every patch of every image
// added (before projection) is one sample. The model keeps Dim components
// (default 16).
func (p *Patch) NewFitter() (Fitter, error) {
	k := p.o.Dim
	if k == 0 {
		k = 16
	}
	if k > p.in {
		return nil, fmt.Errorf("%w: patch: %d PCA components asked of %d values per patch", ErrOptions, k, p.in)
	}
	return &pcaFitter{p: p, k: k, sum: make([]float64, p.in), cov: make([]float64, p.in*p.in)}, nil
}

// pcaFitter accumulates the first and second moments of patches.
type pcaFitter struct {
	p   *Patch
	k   int
	n   int
	sum []float64
	cov []float64 // upper triangle of Σ x xᵀ
}

func (f *pcaFitter) Add(in Input) error {
	img, err := f.p.image(in)
	if err != nil {
		return err
	}
	o := f.p.o
	ch := img.C
	if img.W < o.Size || img.H < o.Size {
		return inputErr(in.ID, "image of %d×%d is smaller than one %d×%d patch", img.W, img.H, o.Size, o.Size)
	}
	if ch*o.Size*o.Size != f.p.in {
		return inputErr(in.ID, "image has %d channel(s), the encoder wants %d", ch, f.p.in/(o.Size*o.Size))
	}
	s := o.Size
	buf := make([]float64, f.p.in)
	d := f.p.in
	for _, y := range patchStarts(img.H, s, o.Stride) {
		for _, x := range patchStarts(img.W, s, o.Stride) {
			for r := 0; r < s; r++ {
				row := ((y+r)*img.W + x) * ch
				for k, v := range img.Pix[row : row+s*ch] {
					buf[r*s*ch+k] = float64(v)
				}
			}
			for i, vi := range buf {
				f.sum[i] += vi
				if vi == 0 {
					continue
				}
				row := f.cov[i*d:]
				for j := i; j < d; j++ {
					row[j] += vi * buf[j]
				}
			}
			f.n++
		}
	}
	return nil
}

func (f *pcaFitter) Model() (*Model, error) {
	if f.n < 2 {
		return nil, fmt.Errorf("%w: patch: PCA needs at least 2 patches, got %d", ErrInput, f.n)
	}
	d := f.p.in
	n := float64(f.n)
	mean := make([]float64, d)
	for i := range mean {
		mean[i] = f.sum[i] / n
	}
	c := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			v := (f.cov[i*d+j] - n*mean[i]*mean[j]) / (n - 1)
			c[i*d+j], c[j*d+i] = v, v
		}
	}
	vals, vecs := jacobiEigen(c, d)
	order := make([]int, d)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case vals[a] > vals[b]:
			return -1
		case vals[a] < vals[b]:
			return 1
		}
		return 0
	})
	pca := &PCA{InputDim: d, Mean: mean}
	for _, e := range order[:f.k] {
		comp := make([]float64, d)
		// Fix the sign (largest coordinate positive) so fits are repeatable.
		big := 0
		for i := 0; i < d; i++ {
			comp[i] = vecs[i*d+e]
			if math.Abs(comp[i]) > math.Abs(comp[big]) {
				big = i
			}
		}
		if comp[big] < 0 {
			for i := range comp {
				comp[i] = -comp[i]
			}
		}
		pca.Components = append(pca.Components, comp)
		pca.Variance = append(pca.Variance, max(0, vals[e]))
	}
	o := f.p.o
	o.Proj, o.Dim = "pca", f.k
	return &Model{Encoder: "patch", PCA: pca, Patch: &o}, nil
}

// jacobiEigen diagonalizes the symmetric d×d matrix a (row-major,
// destroyed) by cyclic Jacobi rotations and returns its eigenvalues and the
// eigenvectors as the columns of a d×d matrix. O(d³) per sweep, a handful
// of sweeps: fine for patches of up to a few hundred values.
func jacobiEigen(a []float64, d int) ([]float64, []float64) {
	v := make([]float64, d*d)
	for i := 0; i < d; i++ {
		v[i*d+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off, diag float64
		for i := 0; i < d; i++ {
			diag += a[i*d+i] * a[i*d+i]
			for j := i + 1; j < d; j++ {
				off += a[i*d+j] * a[i*d+j]
			}
		}
		if off <= 1e-30*diag || off == 0 {
			break
		}
		for p := 0; p < d; p++ {
			for q := p + 1; q < d; q++ {
				apq := a[p*d+q]
				if apq == 0 {
					continue
				}
				theta := (a[q*d+q] - a[p*d+p]) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				cs := 1 / math.Sqrt(t*t+1)
				sn := t * cs
				for k := 0; k < d; k++ {
					akp, akq := a[k*d+p], a[k*d+q]
					a[k*d+p] = cs*akp - sn*akq
					a[k*d+q] = sn*akp + cs*akq
				}
				for k := 0; k < d; k++ {
					apk, aqk := a[p*d+k], a[q*d+k]
					a[p*d+k] = cs*apk - sn*aqk
					a[q*d+k] = sn*apk + cs*aqk
				}
				for k := 0; k < d; k++ {
					vkp, vkq := v[k*d+p], v[k*d+q]
					v[k*d+p] = cs*vkp - sn*vkq
					v[k*d+q] = sn*vkp + cs*vkq
				}
			}
		}
	}
	vals := make([]float64, d)
	for i := range vals {
		vals[i] = a[i*d+i]
	}
	return vals, v
}
