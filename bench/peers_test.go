package bench

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func firstStageFixture(t *testing.T, kernel string, mode wpcsim.ScoreMode, enc collconfig.Encoding) (wpcdb.CollectionConfig, *Synth, []wpcsim.Cloud, *FirstStageVectors) {
	t.Helper()
	k, err := wpcsim.ParseKernel(kernel)
	if err != nil {
		t.Fatal(err)
	}
	cfg := wpcdb.CollectionConfig{Dim: 64, Encoding: enc, Similarity: wpcsim.Config{Kernel: k, Score: mode},
		Features: collconfig.Features{Dim: 128, Seed: 7}}.WithDefaults()
	s := NewSynth(CompactShape, 5)
	queries := []wpcsim.Cloud{s.Query(0, 8), s.Query(1, 8)}
	fs, err := ComputeFirstStage(cfg, func(i int) (wpcsim.Cloud, error) { return s.Item(i).Cloud, nil }, 6, queries)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.Items) != 6*fs.Dim || len(fs.Queries) != 2*fs.Dim {
		t.Fatalf("sizes: %d items, %d queries floats for dim %d", len(fs.Items), len(fs.Queries), fs.Dim)
	}
	return cfg, s, queries, fs
}

func closeF32(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol*(1+math.Abs(float64(b[i]))) {
			return false
		}
	}
	return true
}

// The exported vectors are φ of the collection's own feature map, row by
// row, transformed per score mode as wpcdb's first stage does.
func TestComputeFirstStageIsPhiPerScoreMode(t *testing.T) {
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, s, queries, fs := firstStageFixture(t, wpcsim.DefaultKernelSpec, mode, collconfig.EncodingF32)
			fm, err := wpcsim.NewFeatureMap(cfg.Similarity, 64, wpcsim.FeatureOptions{D: 128, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			sim, _ := wpcsim.New(cfg.Similarity)
			wantDim := fm.Dim()
			if mode == wpcsim.ScoreMMD {
				wantDim++
			}
			if fs.Dim != wantDim {
				t.Fatalf("dim %d, want %d", fs.Dim, wantDim)
			}
			for i := 0; i < 6; i++ {
				c := s.Item(i).Cloud
				phi, _ := fm.Map(c, nil)
				self, _ := sim.Self(c)
				want := phi
				switch mode {
				case wpcsim.ScoreCosine:
					want = make([]float32, len(phi))
					for j, x := range phi {
						want[j] = x / float32(math.Sqrt(self.G))
					}
				case wpcsim.ScoreMMD:
					var n2 float64
					for _, x := range phi {
						n2 += float64(x) * float64(x)
					}
					want = append(phi, float32(math.Sqrt(max(0, self.G-n2))))
				}
				if got := fs.Items[i*fs.Dim : (i+1)*fs.Dim]; !closeF32(got, want, 1e-5) {
					t.Fatalf("item %d: got %v..., want %v...", i, got[:4], want[:4])
				}
			}
			for j, q := range queries {
				phi, _ := fm.Map(q, nil)
				want := phi
				if mode == wpcsim.ScoreMMD {
					want = append(phi, 0)
				}
				if got := fs.Queries[j*fs.Dim : (j+1)*fs.Dim]; !closeF32(got, want, 1e-6) {
					t.Fatalf("query %d differs", j)
				}
			}
		})
	}
}

// With the linear kernel φ is exact, so the exported vectors' inner
// products must give the exact score (inner) and the cosine times
// sqrt(g(Q,Q)) (cosine), and their squared L2 distance mmd² (mmd): the
// per-mode construction ranks as the exact score does.
func TestFirstStageInnerProductsMatchExactScores(t *testing.T) {
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, s, queries, fs := firstStageFixture(t, "linear", mode, collconfig.EncodingF32)
			sim, _ := wpcsim.New(cfg.Similarity)
			inner, _ := wpcsim.New(wpcsim.Config{Kernel: cfg.Similarity.Kernel})
			for j, q := range queries {
				sc, _ := sim.NewScorer(q)
				qself, _ := inner.Self(q)
				for i := 0; i < 6; i++ {
					exact, _ := sc.Score(s.Item(i).Cloud)
					var ip, l2 float64
					for d := 0; d < fs.Dim; d++ {
						a, b := float64(fs.Queries[j*fs.Dim+d]), float64(fs.Items[i*fs.Dim+d])
						ip += a * b
						l2 += (a - b) * (a - b)
					}
					want := exact
					switch mode {
					case wpcsim.ScoreCosine:
						want = exact * math.Sqrt(qself.G)
					case wpcsim.ScoreMMD:
						want, ip = exact*exact, l2
						if fs.Metric != "l2" {
							t.Fatalf("mmd metric %q, want l2", fs.Metric)
						}
					}
					if math.Abs(ip-want) > 1e-4*(1+math.Abs(want)) {
						t.Errorf("query %d item %d: <q, x> = %g, want %g", j, i, ip, want)
					}
				}
			}
		})
	}
}

// Items are featurized as stored: after f16 rounding when the collection
// stores f16, as wpcdb's ingest does.
func TestFirstStageUsesStoredEncoding(t *testing.T) {
	cfg, s, _, fs := firstStageFixture(t, wpcsim.DefaultKernelSpec, wpcsim.ScoreInner, collconfig.EncodingF16)
	fm, _ := wpcsim.NewFeatureMap(cfg.Similarity, 64, wpcsim.FeatureOptions{D: 128, Seed: 7})
	c := s.Item(3).Cloud
	q, err := storage.Quantize(collconfig.EncodingF16, c)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := fm.Map(q, nil)
	raw, _ := fm.Map(c, nil)
	got := fs.Items[3*fs.Dim : 4*fs.Dim]
	if !closeF32(got, stored, 1e-6) {
		t.Fatal("item vector is not φ of the f16-rounded cloud")
	}
	if closeF32(got, raw, 1e-7) {
		t.Fatal("f16 rounding made no difference: the test does not test it")
	}
}

func TestFirstStageMaxSimUsesFDE(t *testing.T) {
	cfg, s, queries, fs := firstStageFixture(t, "maxsim", wpcsim.ScoreInner, collconfig.EncodingF32)
	fde, err := wpcsim.NewFDE(64, false, wpcsim.FDEOptions{Seed: cfg.Features.Seed})
	if err != nil {
		t.Fatal(err)
	}
	if fs.Dim != fde.Dim() {
		t.Fatalf("dim %d, want %d", fs.Dim, fde.Dim())
	}
	item, _ := fde.Map(s.Item(2).Cloud, nil)
	query, _ := fde.MapQuery(queries[1], nil)
	if !closeF32(fs.Items[2*fs.Dim:3*fs.Dim], item, 1e-6) || !closeF32(fs.Queries[fs.Dim:2*fs.Dim], query, 1e-6) {
		t.Fatal("maxsim vectors are not the FDE's item and query encodings")
	}
}

func TestExportWritesFirstStageFiles(t *testing.T) {
	dir := t.TempDir()
	s := NewSynth(CompactShape, 2)
	cfg := wpcdb.CollectionConfig{Dim: 64, Features: collconfig.Features{Dim: 32}}.WithDefaults()
	in := PeerInput{Source: s.Source(), N: 5, Queries: []wpcsim.Cloud{s.Query(0, 8), s.Query(1, 8)}, Truth: [][]string{{"item-0", "item-1"}, {"item-2", "item-3"}},
		Kernel: cfg.Similarity.Kernel, Score: wpcsim.ScoreInner, Candidates: []int{4}, Collection: cfg}
	if err := ExportForPeers(dir, in); err != nil {
		t.Fatal(err)
	}
	fs, err := ComputeFirstStage(cfg, func(i int) (wpcsim.Cloud, error) { return s.Item(i).Cloud, nil }, 5, []wpcsim.Cloud{s.Query(0, 8), s.Query(1, 8)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "first_stage_items.npy"))
	if err != nil {
		t.Fatal(err)
	}
	body := raw[len(raw)-4*len(fs.Items):]
	for i, want := range fs.Items {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:])); got != want {
			t.Fatalf("first_stage_items.npy[%d] = %v, want %v", i, got, want)
		}
	}
	if !strings.Contains(string(raw[:128]), "(5, 96)") { // 64 linear + 32 gaussian features
		t.Errorf("header: %q", raw[:64])
	}
	pts, _ := os.ReadFile(filepath.Join(dir, "items_points.npy"))
	if !strings.Contains(string(pts[:128]), "<f4") {
		t.Errorf("an f32 collection's points must be exported as f32: %q", pts[:64])
	}
}

// With neither node modules nor Python, every peer is listed as skipped,
// with a reason that says what to install, and none appears as a run.
func TestRunPeersSkipsMissingPeers(t *testing.T) {
	for _, maxsim := range []bool{false, true} {
		dir := t.TempDir()
		s := NewSynth(CompactShape, 2)
		spec := wpcsim.DefaultKernelSpec
		if maxsim {
			spec = "maxsim"
		}
		k, _ := wpcsim.ParseKernel(spec)
		cfg := wpcdb.CollectionConfig{Dim: 64, Similarity: wpcsim.Config{Kernel: k}, Features: collconfig.Features{Dim: 32}}.WithDefaults()
		in := PeerInput{Source: s.Source(), N: 5, Queries: []wpcsim.Cloud{s.Query(0, 8), s.Query(1, 8)}, Truth: [][]string{{"item-0", "item-1"}, {"item-2", "item-3"}},
			Kernel: k, Candidates: []int{4}, Collection: cfg}
		if err := ExportForPeers(dir, in); err != nil {
			t.Fatal(err)
		}
		empty := t.TempDir()
		if err := os.WriteFile(filepath.Join(empty, "peers.js"), []byte("process.exit(3)\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []Peers{
			{Python: filepath.Join(empty, "python3"), NodeDir: empty},                        // modules absent
			{Python: filepath.Join(empty, "python3"), Node: filepath.Join(empty, "no-node")}, // node absent
		} {
			runs, skipped, err := RunPeers(context.Background(), p, dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != 0 {
				t.Errorf("runs from absent peers: %+v", runs)
			}
			want := map[string]string{peerPython: "install", peerUSearch: "install-peers.sh"}
			if maxsim {
				want[peerLanceDB] = "install-peers.sh"
			} else {
				want[peerLanceDB] = "maxsim"
			}
			for name, hint := range want {
				if !strings.Contains(skipped[name], hint) {
					t.Errorf("maxsim=%v, %+v: skipped[%s] = %q, want a reason mentioning %q", maxsim, p, name, skipped[name], hint)
				}
			}
		}
	}
}

// Items of a user's file: arbitrary IDs, queries of different lengths. The
// truth is exported as item indices, query lengths beside the padded
// points, and an ID not among the items is an error.
func TestExportArbitraryIDsAndQueryLengths(t *testing.T) {
	dir := t.TempDir()
	cl := func(n int) wpcsim.Cloud {
		c := wpcsim.Cloud{Dim: 2}
		for i := 0; i < n; i++ {
			c.Weights = append(c.Weights, 1)
			c.Points = append(c.Points, 1, float32(i))
		}
		return c
	}
	items := ItemSlice{{ID: "zebra", Cloud: cl(1)}, {ID: "apple", Cloud: cl(3)}, {ID: "mango", Cloud: cl(2)}}
	in := PeerInput{Source: items, N: 3, Queries: []wpcsim.Cloud{cl(1), cl(4)}, Truth: [][]string{{"mango", "zebra"}, {"apple", "mango"}},
		Kernel: wpcsim.Kernel{}, Candidates: []int{2}}
	if err := ExportForPeers(dir, in); err != nil {
		t.Fatal(err)
	}
	readI64 := func(name string, n int) []int64 {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		body := raw[len(raw)-8*n:]
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(body[8*i:]))
		}
		return out
	}
	if got := readI64("truth.npy", 4); got[0] != 2 || got[1] != 0 || got[2] != 1 || got[3] != 2 {
		t.Fatalf("truth indices %v, want [2 0 1 2]", got)
	}
	if got := readI64("queries_lengths.npy", 2); got[0] != 1 || got[1] != 4 {
		t.Fatalf("query lengths %v, want [1 4]", got)
	}
	qp, _ := os.ReadFile(filepath.Join(dir, "queries_points.npy"))
	if !strings.Contains(string(qp[:128]), "(2, 4, 2)") {
		t.Fatalf("queries padded to 4 points: header %q", qp[:64])
	}
	in.Truth = [][]string{{"mango", "kiwi"}, {"apple", "mango"}}
	if err := ExportForPeers(t.TempDir(), in); err == nil || !strings.Contains(err.Error(), `"kiwi"`) {
		t.Fatalf("unknown truth ID: %v", err)
	}
}

// A peer program still running at Peers.Timeout is killed: the run it
// printed is kept and it is listed as skipped, timed out.
func TestRunPeersTimeout(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"maxsim": false, "first_stage_dim": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "slow.sh")
	if err := os.WriteFile(script, []byte("echo '{\"method\": \"slow-peer\", \"recall\": 0.5}'\nexec sleep 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := Peers{Python: "/bin/sh", PythonScript: script, Timeout: 300 * time.Millisecond}
	runs, skipped, err := RunPeers(context.Background(), p, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Method != "slow-peer" {
		t.Errorf("runs %+v, want the one printed before the timeout", runs)
	}
	if !strings.Contains(skipped[peerPython], "peer-timeout") {
		t.Errorf("skipped[%s] = %q, want the timeout named", peerPython, skipped[peerPython])
	}
}
