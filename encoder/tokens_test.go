package encoder

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/internal/safetensors"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func npyFile(t *testing.T, name string, shape []int, data []float32) string {
	t.Helper()
	var b bytes.Buffer
	if err := npy.WriteFloat32(&b, shape, data); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, b.Bytes())
}

func TestTokensHead(t *testing.T) {
	const din, d = 4, 3
	proj := []float32{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}
	u := []float32{100, -50, 0, 10}
	npyEnc, err := NewTokens(TokensOptions{HeadProj: npyFile(t, "p.npy", []int{din, d}, proj), HeadWeight: npyFile(t, "u.npy", []int{din}, u), HeadBias: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(t.TempDir(), "head.safetensors")
	if err := safetensors.WriteF32(st, map[string]safetensors.Tensor{
		"proj": {Shape: []int{din, d}, Data: proj}, "weight": {Shape: []int{din}, Data: u}, "bias": {Shape: []int{1}, Data: []float32{1}},
	}); err != nil {
		t.Fatal(err)
	}
	stEnc, err := NewTokens(TokensOptions{Head: st})
	if err != nil {
		t.Fatal(err)
	}
	tk := Tokens{T: 3, D: din, Features: []float32{1, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0}}
	for _, e := range []*TokensEncoder{npyEnc, stEnc} {
		c, err := e.Encode(Input{ID: "r", Data: tk})
		if err != nil {
			t.Fatal(err)
		}
		validate(t, c)
		// Token 2 is all zero: left out. Token 0: point (1,0,0), t = 100+1.
		if c.Len() != 2 || c.Dim != d {
			t.Fatalf("%d points of dim %d", c.Len(), c.Dim)
		}
		if w := 100 * math.Tanh(101.0/100); math.Abs(float64(c.Weights[0])-w) > 1e-4 {
			t.Fatalf("weight %v, want %v", c.Weights[0], w)
		}
		// Token 1: (0,2,0,1) → point (1, 3, 1), t = -100 + 10 + 1.
		if p := c.Point(1); p[0] != 1 || p[1] != 3 || p[2] != 1 || math.Abs(float64(c.Weights[1])-100*math.Tanh(-89.0/100)) > 1e-4 {
			t.Fatalf("token 1: %v w %v", p, c.Weights[1])
		}
	}
	if _, err := NewTokens(TokensOptions{HeadProj: npyFile(t, "p2.npy", []int{d, din}, proj), HeadWeight: npyFile(t, "u2.npy", []int{din}, u)}); err == nil || !strings.Contains(err.Error(), "transpose") {
		t.Fatalf("transposed projection: %v", err)
	}
	if _, err := NewTokens(TokensOptions{Head: st, Weights: "w.npy"}); err == nil || !strings.Contains(err.Error(), "leave out the weights") {
		t.Fatalf("head and weights: %v", err)
	}
}

func TestTokensRead(t *testing.T) {
	const n, T, D = 3, 4, 2
	feat := make([]float32, n*T*D)
	for i := range feat {
		feat[i] = float32(i + 1)
	}
	fp := npyFile(t, "f.npy", []int{n, T, D}, feat)
	wp := npyFile(t, "w.npy", []int{n, T}, []float32{1, 2, 3, 4, -1, -2, -3, -4, 0, 5, 0, 5})
	ids := writeFile(t, "ids.txt", []byte("a\nb\nc\n"))
	e, err := NewTokens(TokensOptions{Weights: wp, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	ins := readAll(t, e, fp)
	if len(ins) != 3 || ins[1].ID != "b" {
		t.Fatalf("inputs %v", ins)
	}
	cs, err := e.EncodeBatch(ins)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, cs...)
	// Row c: weights 0 are left out.
	if cs[2].Len() != 2 || cs[2].Weights[0] != 5 || cs[1].Weights[3] != -4 {
		t.Fatalf("clouds %+v", cs)
	}
	bad, _ := NewTokens(TokensOptions{IDs: writeFile(t, "ids2.txt", []byte("a\n"))})
	if err := bad.Read(fp, func(Input) error { return nil }); err == nil || !strings.Contains(err.Error(), "1 IDs for 3 rows") {
		t.Fatalf("short ids: %v", err)
	}
	img := writeFile(t, "x.npy", []byte("not numpy"))
	if err := e.Read(img, func(Input) error { return nil }); err == nil || !strings.Contains(err.Error(), img) {
		t.Fatalf("bad npy: %v", err)
	}
}

// learned returns n learned-looking clouds (signed weights up to 10, ~40%
// negative, clustered anisotropic points).
func learned(seed uint64, n, m, d int) []wpcsim.Cloud {
	rng := wpctest.NewRand(seed)
	out := make([]wpcsim.Cloud, n)
	for i := range out {
		c := wpctest.RandomCloud(rng, m, d, wpctest.Shape{})
		out[i] = wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: c.Points}
	}
	return out
}

func TestCompressKeepsLinearTerm(t *testing.T) {
	clouds := learned(3, 6, 40, 8)
	for _, o := range []CompressOptions{{}, {RawPoints: true}, {Sum: true}, {RawPoints: true, Sum: true}} {
		cfg := wpcsim.Config{Kernel: mustKernel(t, "linear"), RawPoints: o.RawPoints}
		if o.Sum {
			cfg.Norm = wpcsim.NormSum
		}
		sim, _ := wpcsim.New(cfg)
		for _, m := range []int{1, 2, 7} {
			var comp []wpcsim.Cloud
			for _, c := range clouds {
				cc, err := Compress(c, m, o)
				if err != nil {
					t.Fatal(err)
				}
				if cc.Len() > m {
					t.Fatalf("%d points > %d", cc.Len(), m)
				}
				validate(t, cc)
				comp = append(comp, cc)
			}
			for i := 1; i < len(clouds); i++ {
				sc, _ := sim.NewScorer(clouds[0])
				g, _ := sc.Score(clouds[i])
				scc, _ := sim.NewScorer(comp[0])
				gc, _ := scc.Score(comp[i])
				if math.Abs(g-gc) > 1e-4*math.Max(1, math.Abs(g)) {
					t.Fatalf("%+v m=%d: linear g %v became %v", o, m, g, gc)
				}
			}
		}
	}
	// Deterministic for a seed.
	a, _ := Compress(clouds[0], 5, CompressOptions{Seed: 4})
	b, _ := Compress(clouds[0], 5, CompressOptions{Seed: 4})
	if !cloudsEqual([]wpcsim.Cloud{a}, []wpcsim.Cloud{b}) {
		t.Fatal("compression is not deterministic")
	}
	// Weights that cancel exactly: +1 and -1 on the same point, m = 1.
	c := wpcsim.Cloud{Dim: 2, Weights: []float32{1, -1}, Points: []float32{1, 0, 1, 0}}
	if _, err := Compress(c, 1, CompressOptions{}); err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Fatalf("cancelling weights: %v", err)
	}
	// With m = 2 they are kept apart, never merged into weight 0.
	if cc, err := Compress(c, 2, CompressOptions{}); err != nil || cc.Len() != 2 {
		t.Fatalf("m=2: %v %v", cc, err)
	}
}

func mustKernel(t *testing.T, s string) wpcsim.Kernel {
	k, err := wpcsim.ParseKernel(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCompressionError measures the error compression brings to the
// paper's kernel on learned-looking clouds of 77 points, d = 64 (run with
// -v to see it). It fails only if compression becomes useless.
func TestCompressionError(t *testing.T) {
	clouds := learned(11, 30, 77, 64)
	for _, spec := range []string{wpcsim.DefaultKernelSpec, "gaussian(0.5)"} {
		sim, _ := wpcsim.New(wpcsim.Config{Kernel: mustKernel(t, spec), Score: wpcsim.ScoreCosine})
		for _, m := range []int{8, 32} {
			comp := make([]wpcsim.Cloud, len(clouds))
			for i, c := range clouds {
				var err error
				if comp[i], err = Compress(c, m, CompressOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := MeasureCompression(sim, clouds, comp)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("77 → %d points (%s, cosine): mean |Δ| %.4f of RMS, max %.4f, top-10 overlap %.3f", m, spec, rep.RelErr, rep.MaxRelErr, rep.Top10)
			if rep.Top10 < 0.3 {
				t.Fatalf("m=%d: top-10 overlap %.3f", m, rep.Top10)
			}
		}
	}
}
