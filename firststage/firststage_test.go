package firststage

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func testMap(t *testing.T, spec string, mode wpcsim.ScoreMode) *Map {
	t.Helper()
	k, err := wpcsim.ParseKernel(spec)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := wpcsim.New(wpcsim.Config{Kernel: k, Score: mode})
	if err != nil {
		t.Fatal(err)
	}
	feat, err := wpcsim.NewFeatureMap(sim.Config(), 16, wpcsim.FeatureOptions{D: 256})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMap(sim, feat, Representation{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFitPCAFindsTheSubspace: vectors drawn from a known 16-dimensional
// subspace (plus small noise) must give 16 orthonormal directions spanning
// it, largest variance first.
func TestFitPCAFindsTheSubspace(t *testing.T) {
	const seed = 11
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	m := testMap(t, wpcsim.DefaultKernelSpec, wpcsim.ScoreInner)
	D, r := m.PhiDim(), 16
	basis := make([]float32, r*D)
	for i := range basis {
		basis[i] = float32(rng.NormFloat64())
	}
	orthonormalRows(basis, r, D)
	sample := make([]sampled, 600)
	for i := range sample {
		phi := make([]float32, D)
		for j := 0; j < r; j++ {
			c := float32(rng.NormFloat64() * math.Pow(1.5, float64(r-j))) // decreasing variance
			for k := range phi {
				phi[k] += c * basis[j*D+k]
			}
		}
		for k := range phi {
			phi[k] += float32(1e-3 * rng.NormFloat64())
		}
		sample[i] = sampled{iid: uint32(i), phi: phi}
	}
	dirs := fitPCA(m, sample, 600, rng)
	if len(dirs) < r {
		t.Fatalf("%d directions, want at least %d", len(dirs), r)
	}
	for a := 0; a < r; a++ {
		for b := 0; b <= a; b++ {
			d := dot64(dirs[a], dirs[b])
			if want := map[bool]float64{true: 1, false: 0}[a == b]; math.Abs(d-want) > 1e-3 {
				t.Fatalf("<dir %d, dir %d> = %v, want %v", a, b, d, want)
			}
		}
		// Each direction lies in the subspace: its projection keeps its norm.
		var in float64
		for j := 0; j < r; j++ {
			p := dot64(dirs[a], basis[j*D:(j+1)*D])
			in += p * p
		}
		if in < 0.999 {
			t.Fatalf("direction %d keeps %.4f of its norm in the subspace, want ≥ 0.999", a, in)
		}
	}
	// The first direction is the largest-variance one, basis row 0.
	if p := math.Abs(dot64(dirs[0], basis[:D])); p < 0.99 {
		t.Fatalf("first direction has |<dir, basis 0>| = %.4f, want ≥ 0.99", p)
	}
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// TestRepresentationRoundTrip: a saved representation reads back equal, and
// every flipped byte is an error, never a different representation.
func TestRepresentationRoundTrip(t *testing.T) {
	rep := Representation{Kind: PCA, Dim: 3, Recall: 0.985, Depth: 40, Queries: 50, Sample: 900, Items: 1200, Proj: []float32{1, 2, 3, 4, 5, 6}}
	b := MarshalRepresentation(rep, 2)
	got, phiDim, err := UnmarshalRepresentation(b)
	if err != nil {
		t.Fatal(err)
	}
	if phiDim != 2 || got.String() != "pca-3" || got.Recall != rep.Recall || got.Items != 1200 || got.Sample != 900 || len(got.Proj) != 6 || got.Proj[5] != 6 {
		t.Fatalf("round trip gave %+v (φ %d), want %+v (φ 2)", got, phiDim, rep)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x10
		if _, _, err := UnmarshalRepresentation(bad); err == nil {
			t.Fatalf("byte %d flipped: no error", i)
		}
	}
	if _, _, err := UnmarshalRepresentation(b[:len(b)-5]); err == nil {
		t.Fatal("truncated: no error")
	}
}

// TestMapRepresentations: each representation's vectors have the
// dimension it claims, centroid needs a linear term, and the centroid's
// query vector is φ's linear block.
func TestMapRepresentations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 0))
	cloud := wpcsim.Cloud{Dim: 16, Weights: []float32{2, -1.5, 0.5}, Points: make([]float32, 48)}
	for i := range cloud.Points {
		cloud.Points[i] = float32(rng.NormFloat64())
	}
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		phiMap := testMap(t, wpcsim.DefaultKernelSpec, mode)
		cm, err := NewMap(phiMap.sim, phiMap.feat, Representation{Kind: Centroid})
		if err != nil {
			t.Fatal(err)
		}
		q, err := cm.AppendQuery(nil, cloud)
		if err != nil {
			t.Fatal(err)
		}
		phi, _ := phiMap.feat.Map(cloud, nil)
		extra := map[bool]int{true: 1, false: 0}[mode == wpcsim.ScoreMMD]
		if len(q) != 16+extra || cm.Dim() != 16+extra {
			t.Fatalf("%s: centroid query of %d values, dim %d", mode, len(q), cm.Dim())
		}
		for k := 0; k < 16; k++ {
			if math.Abs(float64(q[k]-phi[cm.linear[0].Offset+k])) > 1e-6 {
				t.Fatalf("%s: centroid[%d] = %v, φ's linear block %v", mode, k, q[k], phi[cm.linear[0].Offset+k])
			}
		}
		if item := cm.AppendItem(nil, wpcsim.Self{G: 2, Mass: 3}, phi); len(item) != cm.Dim() {
			t.Fatalf("%s: item vector of %d values, dim %d", mode, len(item), cm.Dim())
		}
	}
	g := testMap(t, "gaussian(0.5)", wpcsim.ScoreInner)
	if _, err := NewMap(g.sim, g.feat, Representation{Kind: Centroid}); err == nil {
		t.Fatal("centroid without a linear term: no error")
	}
	if _, err := NewMap(g.sim, g.feat, Representation{Kind: PCA, Dim: 4, Proj: make([]float32, 3)}); err == nil {
		t.Fatal("pca with a short projection: no error")
	}
}

// TestSampleIDs: the calibration's one sample is n distinct live IDs in
// ascending order (all of them when there are at most n), and every ID is
// about equally likely to be drawn.
func TestSampleIDs(t *testing.T) {
	const seed = 9
	t.Logf("seed %d", seed)
	live := roaring.New()
	for i := uint32(0); i < 3000; i += 3 { // 1,000 live IDs, with gaps
		live.Add(i)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	if got := sampleIDs(live, 1000, rng); !slices.Equal(got, live.ToArray()) {
		t.Fatalf("n = card: got %d IDs, want every live one", len(got))
	}
	hits := map[uint32]int{}
	const rounds = 400
	for range rounds {
		got := sampleIDs(live, 100, rng)
		if len(got) != 100 || !slices.IsSorted(got) {
			t.Fatalf("sample of %d, sorted %v", len(got), slices.IsSorted(got))
		}
		for i, id := range got {
			if !live.Contains(id) || i > 0 && got[i-1] == id {
				t.Fatalf("sample holds %d, not live or twice", id)
			}
			hits[id]++
		}
	}
	// Each ID is drawn with probability 0.1: 40 times in 400 rounds on
	// average, standard deviation 6; the first and last halves of the IDs
	// (the reservoir's early and late arrivals) get equal shares.
	var early, late int
	for id, n := range hits {
		if id < 1500 {
			early += n
		} else {
			late += n
		}
	}
	if d := early - late; d > 800 || d < -800 {
		t.Fatalf("early IDs drawn %d times, late ones %d", early, late)
	}
}

// TestExactQueryIsPhi: an exact map (the linear kernel) probes with
// MapLinear, which must give the φ of Map bit for bit (items are indexed by
// Map's φ), in every score mode, for clouds of 1 to 9 points (seed 5).
func TestExactQueryIsPhi(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 0))
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		m := testMap(t, "2*linear", mode)
		if !m.Exact() {
			t.Fatalf("mode %v: the linear kernel's map is not exact", mode)
		}
		for n := 1; n <= 9; n++ {
			c := wpcsim.Cloud{Dim: 16, Points: make([]float32, n*16), Weights: make([]float32, n)}
			for i := range c.Points {
				c.Points[i] = float32(rng.NormFloat64())
			}
			for i := range c.Weights {
				c.Weights[i] = float32(rng.Float64() - 0.3)
			}
			got, err := m.AppendQuery(nil, c)
			if err != nil {
				t.Fatal(err)
			}
			phi, err := m.feat.Map(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if mode == wpcsim.ScoreMMD {
				phi = append(phi, 0)
			}
			if !slices.Equal(got, phi) {
				t.Fatalf("mode %v, %d points: query vector %v, φ %v", mode, n, got, phi)
			}
		}
	}
}

// TestRankGraph: the FDE-through-a-graph ranking of a calibration lists
// depth items per query, never the query's own item, and on 800 items of a
// well-connected graph agrees with the exact scan's top depth (≥ 0.9 of
// it); a collection whose index stays flat is never measured through a
// graph (seed 29).
func TestRankGraph(t *testing.T) {
	const seed, n, depth = 29, 800, 20
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	m := testMap(t, "gaussian(1)", wpcsim.ScoreInner)
	sim := m.sim
	cloud := func() wpcsim.Cloud {
		c := wpcsim.Cloud{Dim: 16, Points: make([]float32, 3*16), Weights: []float32{1, 1, 1}}
		for i := range c.Points {
			c.Points[i] = float32(rng.NormFloat64())
		}
		return c
	}
	sample := make([]sampled, n)
	clouds := make([]wpcsim.Cloud, n)
	for i := range sample {
		clouds[i] = cloud()
		self, err := sim.Self(clouds[i])
		if err != nil {
			t.Fatal(err)
		}
		phi, err := m.feat.Map(clouds[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		sample[i] = sampled{iid: uint32(i), self: self, phi: phi}
	}
	phiQ := make([][]float32, 20)
	own := make([]int64, len(phiQ))
	for qi := range phiQ {
		own[qi] = int64(qi * 7) // held out: the query is that item's cloud
		phiQ[qi] = sample[qi*7].phi
	}
	o := CalibrateOptions{Index: collconfig.Index{Kind: collconfig.IndexHNSW}}.withDefaults()
	if !o.graphAt(m, n) {
		t.Fatal("an hnsw index does not serve the sample from a graph")
	}
	if (CalibrateOptions{Index: collconfig.Index{Kind: collconfig.IndexFlat}}).graphAt(m, 1<<30) {
		t.Fatal("a flat index serves from a graph")
	}
	got, err := rankGraph(context.Background(), m, sample, phiQ, own, depth, o)
	if err != nil {
		t.Fatal(err)
	}
	flat := index.NewFlat(m.dim, m.metric)
	var v []float32
	for _, s := range sample {
		v = m.AppendItem(v[:0], s.self, s.phi)
		if err := flat.Add(s.iid, v); err != nil {
			t.Fatal(err)
		}
	}
	var agree, all int
	for qi := range phiQ {
		if len(got[qi]) != depth || slices.Contains(got[qi], uint32(own[qi])) {
			t.Fatalf("query %d: graph ranking %v: want %d items without its own %d", qi, got[qi], depth, own[qi])
		}
		want, err := rank(flat, m.queryFromPhi(phiQ[qi]), own[qi], depth)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range want {
			all++
			if slices.Contains(got[qi], id) {
				agree++
			}
		}
	}
	if r := float64(agree) / float64(all); r < 0.9 {
		t.Fatalf("the graph ranking holds %.3f of the exact scan's top %d, want ≥ 0.9", r, depth)
	}
}

// TestRecallPoints: the point index's recall reads its own ranking at its
// depth for the queries it serves, and the FDE's at the FDE's depth for
// the others.
func TestRecallPoints(t *testing.T) {
	pts := [][]uint32{{1, 2, 9}, {7, 8, 9}}
	fde := [][]uint32{{5, 6, 1}, {3, 4, 5}}
	truth := [][]uint32{{1, 2}, {3, 5}}
	// Both served at point depth 2: 2 of 2 for the first, 0 for the second.
	if got := recallPoints(pts, fde, []bool{true, true}, truth, 2, 3); got != 0.5 {
		t.Errorf("both served: %v, want 0.5", got)
	}
	// The second goes to the FDE at depth 3: 3 and 5 are there.
	if got := recallPoints(pts, fde, []bool{true, false}, truth, 2, 3); got != 1 {
		t.Errorf("second not served: %v, want 1", got)
	}
	// At FDE depth 1 only the second's 3 is found.
	if got := recallPoints(pts, fde, []bool{true, false}, truth, 2, 1); got != 0.75 {
		t.Errorf("second not served, FDE depth 1: %v, want 0.75", got)
	}
}
