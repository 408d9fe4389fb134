package wpcsim

import (
	"fmt"
	"math"
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
)

// mapFloat64 is φ(c) as it was computed before the float32 kernels: every
// projection, cosine and sum in float64. It is the reference of
// TestMapFloat32Error.
func mapFloat64(f *FeatureMap, c Cloud) []float64 {
	m, d := c.Len(), f.dim
	hat := make([]float32, m*d)
	for j := 0; j < m; j++ {
		src := c.Points[j*d : (j+1)*d]
		if f.cfg.RawPoints {
			copy(hat[j*d:], src)
		} else {
			normalizeInto(hat[j*d:(j+1)*d], src, pointNorm2(src))
		}
	}
	norm := 1.0
	if f.cfg.Norm == NormMean {
		norm = 1 / float64(m)
	}
	out := make([]float64, f.n)
	for bi, blk := range f.blocks {
		dst := out[blk.Offset : blk.Offset+blk.Len]
		scale := math.Sqrt(blk.Alpha) * norm
		for j := 0; j < m; j++ {
			x := hat[j*d : (j+1)*d]
			wj := float64(c.Weights[j])
			for i := range dst {
				if blk.Kind == Linear {
					dst[i] += wj * float64(x[i])
					continue
				}
				row := f.stackOf[bi] + i
				var p float64
				for k, v := range x {
					p += float64(v) * float64(f.wAll[row*d+k])
				}
				dst[i] += wj * math.Cos(p+float64(f.bAll[row]))
			}
		}
		if blk.Kind != Linear {
			scale *= math.Sqrt(2 / float64(blk.Len))
		}
		for i := range dst {
			dst[i] *= scale
		}
	}
	return out
}

// TestMapFloat32Error measures how far φ computed with float32 projections,
// the polynomial cosine and float32 sums is from φ in float64, in units of
// each block's largest possible coordinate, scale·Σ_j|w_j|, and checks the
// bound mapInto documents for the shapes and kernels of the benchmarks
// (normalized points: projections of a few units).
func TestMapFloat32Error(t *testing.T) {
	for _, tc := range []struct {
		kernel   string
		raw      bool
		m, d, dd int
	}{
		{"", false, 17, 64, 256},
		{"linear+gaussian(0.5)+imq(0.5)", false, 49, 51, 256},
		{"gaussian(4)", true, 49, 51, 128},
		{"", false, 197, 128, 128},
	} {
		name := fmt.Sprintf("%s raw=%v M=%d d=%d D=%d", tc.kernel, tc.raw, tc.m, tc.d, tc.dd)
		cfg := Config{RawPoints: tc.raw}
		if tc.kernel != "" {
			k, err := ParseKernel(tc.kernel)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Kernel = k
		}
		f, err := NewFeatureMap(cfg, tc.d, FeatureOptions{D: tc.dd, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		const seed = 5
		wc := wpctest.RandomCloud(wpctest.NewRand(seed), tc.m, tc.d, wpctest.Shape{})
		c := Cloud{Dim: wc.Dim, Weights: wc.Weights, Points: wc.Points}
		got, err := f.Map(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := mapFloat64(f, c)
		var mass float64
		for _, w := range c.Weights {
			mass += math.Abs(float64(w))
		}
		norm := 1.0
		if f.cfg.Norm == NormMean {
			norm = 1 / float64(tc.m)
		}
		for _, blk := range f.blocks {
			unit := math.Sqrt(blk.Alpha) * norm * mass
			if blk.Kind != Linear {
				unit *= math.Sqrt(2 / float64(blk.Len))
			}
			worst := 0.0
			for i := blk.Offset; i < blk.Offset+blk.Len; i++ {
				worst = max(worst, math.Abs(float64(got[i])-want[i])/unit)
			}
			// The documented bound for |p| ≤ 40: 2e-7 + 6e-8·(40+2π) + M·6e-8.
			bound := 2e-7 + 6e-8*(40+2*math.Pi) + float64(tc.m)*6e-8
			if blk.Kind == Linear {
				bound = 2e-7 // a float32 rounding of a float64 sum
			}
			t.Logf("%s term %d (%s): worst error %.3g of scale·Σ|w| (bound %.3g)", name, blk.Term, blk.Kind, worst, bound)
			if !(worst <= bound) {
				t.Errorf("%s seed %d term %d (%s): worst error %.3g of scale·Σ|w|, want ≤ %.3g", name, seed, blk.Term, blk.Kind, worst, bound)
			}
		}
	}
}
