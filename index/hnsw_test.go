package index

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/raceflag"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// clusteredData draws vectors of dimension dim around gaussian centres,
// each with its own anisotropic, rotated covariance (a random mixing
// matrix of rank min(dim, 32) with decaying column scales) and its own norm
// scale, so that clusters differ in spread, shape and norm as learned
// embeddings do. Above 32 dimensions the centres are scaled so that the
// geometry matches dimension 32 and a little isotropic noise makes the
// clusters full rank.
type clusteredData struct {
	dim, rank int
	centres   [][]float32
	spreads   []float64
	mix       [][]float32 // per centre, dim×rank row-major
}

func newClusteredData(rng *rand.Rand, dim, centres int) *clusteredData {
	d := &clusteredData{dim: dim, rank: min(dim, 32)}
	cscale := math.Sqrt(float64(d.rank) / float64(dim))
	for range centres {
		c := make([]float32, dim)
		scale := 0.5 + 1.5*rng.Float64()
		for i := range c {
			c[i] = float32(rng.NormFloat64() * scale * cscale)
		}
		spread := 3 * (0.15 + 0.5*rng.Float64())
		m := make([]float32, dim*d.rank)
		for j := 0; j < d.rank; j++ {
			colScale := spread * math.Exp(-3*float64(j)/float64(d.rank)) // anisotropic
			for i := 0; i < dim; i++ {
				m[i*d.rank+j] = float32(rng.NormFloat64() * colScale / math.Sqrt(float64(dim)) * 2)
			}
		}
		d.centres = append(d.centres, c)
		d.spreads = append(d.spreads, spread)
		d.mix = append(d.mix, m)
	}
	return d
}

func (d *clusteredData) draw(rng *rand.Rand) []float32 {
	j := rng.IntN(len(d.centres))
	z := make([]float64, d.rank)
	for i := range z {
		z[i] = rng.NormFloat64()
	}
	v := make([]float32, d.dim)
	m := d.mix[j]
	noise := 0.0
	if d.rank < d.dim {
		noise = 0.5 * d.spreads[j] / math.Sqrt(float64(d.dim))
	}
	for i := range v {
		s := float64(d.centres[j][i])
		for k := 0; k < d.rank; k++ {
			s += float64(m[i*d.rank+k]) * z[k]
		}
		if noise > 0 {
			s += noise * rng.NormFloat64()
		}
		v[i] = float32(s)
	}
	return v
}

// recallAt compares got with want (the oracle's top k) by set overlap.
func recallAt(got, want []Result) float64 {
	if len(want) == 0 {
		return 1
	}
	in := map[uint32]bool{}
	for _, r := range want {
		in[r.ID] = true
	}
	hit := 0
	for _, r := range got {
		if in[r.ID] {
			hit++
		}
	}
	return float64(hit) / float64(len(want))
}

type testSet struct {
	ids  []uint32
	vecs map[uint32][]float32
	qs   [][]float32
}

func newTestSet(seed uint64, n, dim, centres, queries int) *testSet {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := newClusteredData(rng, dim, centres)
	ts := &testSet{vecs: map[uint32][]float32{}}
	for len(ts.ids) < n {
		id := uint32(rng.IntN(20 * n))
		if _, dup := ts.vecs[id]; dup {
			continue
		}
		ts.ids = append(ts.ids, id)
		ts.vecs[id] = d.draw(rng)
	}
	for range queries {
		ts.qs = append(ts.qs, d.draw(rng))
	}
	return ts
}

func buildBoth(t testing.TB, ts *testSet, dim int, m Metric, opts HNSWOptions) (*HNSW, *Flat) {
	t.Helper()
	h, err := NewHNSW(dim, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := NewFlat(dim, m)
	for _, id := range ts.ids {
		if err := h.Add(id, ts.vecs[id]); err != nil {
			t.Fatal(err)
		}
		f.Add(id, ts.vecs[id])
	}
	return h, f
}

// meanRecall searches every query in both and returns the mean recall@k,
// failing on a deleted/filtered-out ID, a wrong count or a wrong order.
func meanRecall(t testing.TB, h *HNSW, f *Flat, qs [][]float32, k int, filter *roaring.Bitmap, p Params) float64 {
	t.Helper()
	var sum float64
	for qi, q := range qs {
		got, err := h.Search(q, k, filter, p)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := f.Search(q, k, filter, Params{})
		if len(got) != len(want) {
			t.Fatalf("query %d: %d results, want %d", qi, len(got), len(want))
		}
		for i, r := range got {
			if !f.Contains(r.ID) {
				t.Fatalf("query %d: returned %d, which is not indexed", qi, r.ID)
			}
			if filter != nil && !filter.Contains(r.ID) {
				t.Fatalf("query %d: returned %d, which the filter excludes", qi, r.ID)
			}
			if i > 0 && better(r, got[i-1]) {
				t.Fatalf("query %d: results out of order at %d: %v", qi, i, got)
			}
		}
		sum += recallAt(got, want)
	}
	return sum / float64(len(qs))
}

func testSize(t testing.TB) (n, queries int) {
	if testing.Short() {
		return 2000, 50
	}
	return 5000, 100
}

func TestHNSWRecall(t *testing.T) {
	const seed = 42
	t.Logf("seed %d", seed)
	n, nq := testSize(t)
	ts := newTestSet(seed, n, 32, 50, nq)
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		h, f := buildBoth(t, ts, 32, m, HNSWOptions{Seed: seed})
		if h.Len() != n {
			t.Fatalf("%s: len %d want %d", m, h.Len(), n)
		}
		r := meanRecall(t, h, f, ts.qs, 10, nil, Params{})
		t.Logf("%s: recall@10 %.4f (n %d, dim 32, ef 64)", m, r, n)
		if r < 0.95 {
			t.Errorf("%s: recall@10 %.4f < 0.95", m, r)
		}
		// k above ef: the beam widens to k.
		r = meanRecall(t, h, f, ts.qs[:20], 200, nil, Params{})
		t.Logf("%s: recall@200 %.4f (ef max(64, 200))", m, r)
		if r < 0.95 {
			t.Errorf("%s: recall@200 %.4f < 0.95", m, r)
		}
	}
}

func TestHNSWDeletesAndReplaces(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	n, nq := testSize(t)
	ts := newTestSet(seed, n, 32, 50, nq)
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		h, f := buildBoth(t, ts, 32, m, HNSWOptions{Seed: seed})
		// Delete 30% (the entry among them), checking as we go that deleted
		// IDs never come back.
		perm := rng.Perm(n)
		deleted := map[uint32]bool{}
		entryID := h.ids[h.entry]
		h.Delete(entryID)
		f.Delete(entryID)
		deleted[entryID] = true
		for i, pi := range perm[:3*n/10] {
			id := ts.ids[pi]
			h.Delete(id)
			f.Delete(id)
			deleted[id] = true
			if i%100 == 0 {
				res, _ := h.Search(ts.qs[i%nq], 10, nil, Params{})
				for _, r := range res {
					if deleted[r.ID] {
						t.Fatalf("%s: deleted id %d returned", m, r.ID)
					}
				}
			}
		}
		h.Delete(123456789) // unknown: ignored
		if h.Len() != f.Len() {
			t.Fatalf("%s: len %d want %d", m, h.Len(), f.Len())
		}
		r := meanRecall(t, h, f, ts.qs, 10, nil, Params{})
		t.Logf("%s: recall@10 after deleting 30%%: %.4f (tombstones now %d)", m, r, h.deleted)
		if r < 0.95 {
			t.Errorf("%s: recall@10 after deletes %.4f < 0.95", m, r)
		}
		// Re-add a third of the deleted, with new vectors for half of those,
		// and replace some live vectors.
		// In a fixed order (not the map's), so that the seed replays.
		order := make([]uint32, 0, len(deleted))
		for id := range deleted {
			order = append(order, id)
		}
		slices.Sort(order)
		for i, id := range order {
			if i%3 == 0 {
				v := ts.vecs[id]
				if i%2 == 0 {
					v = ts.vecs[ts.ids[rng.IntN(n)]]
				}
				h.Add(id, v)
				f.Add(id, v)
				delete(deleted, id)
			}
		}
		for _, pi := range perm[len(perm)-n/10:] {
			id := ts.ids[pi]
			v := ts.vecs[ts.ids[rng.IntN(n)]]
			h.Add(id, v)
			f.Add(id, v)
			delete(deleted, id) // the entry may be among these
		}
		if h.Len() != f.Len() {
			t.Fatalf("%s: len %d want %d", m, h.Len(), f.Len())
		}
		for id := range deleted {
			if h.Contains(id) {
				t.Fatalf("%s: deleted %d still contained", m, id)
			}
		}
		r = meanRecall(t, h, f, ts.qs, 10, nil, Params{})
		t.Logf("%s: recall@10 after re-adding and replacing: %.4f (tombstones now %d)", m, r, h.deleted)
		if r < 0.95 {
			t.Errorf("%s: recall@10 after re-adds %.4f < 0.95", m, r)
		}
	}
}

func TestHNSWDeleteAll(t *testing.T) {
	h, _ := NewHNSW(4, L2, HNSWOptions{Seed: 1})
	rng := rand.New(rand.NewPCG(1, 1))
	vec := func() []float32 {
		return []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())}
	}
	for round := 0; round < 3; round++ {
		for id := uint32(0); id < 200; id++ {
			h.Add(id, vec())
		}
		for id := uint32(0); id < 200; id++ {
			h.Delete(id)
			res, err := h.Search(vec(), 5, nil, Params{})
			if err != nil {
				t.Fatal(err)
			}
			if want := min(5, 199-int(id)); len(res) != want {
				t.Fatalf("round %d after deleting %d: %d results, want %d", round, id, len(res), want)
			}
			for _, r := range res {
				if r.ID <= id {
					t.Fatalf("deleted %d returned", r.ID)
				}
			}
		}
		if h.Len() != 0 {
			t.Fatalf("len %d after deleting all", h.Len())
		}
	}
}

func TestHNSWFilters(t *testing.T) {
	const seed = 99
	t.Logf("seed %d", seed)
	n, nq := testSize(t)
	ts := newTestSet(seed, n, 32, 50, nq)
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		h, f := buildBoth(t, ts, 32, m, HNSWOptions{Seed: seed})
		for _, frac := range []float64{0.5, 0.05, 0.005} {
			filter := roaring.New()
			for _, id := range ts.ids {
				if rng.Float64() < frac {
					filter.Add(id)
				}
			}
			filter.Add(0xFFFFFFF0) // not indexed: ignored
			r := meanRecall(t, h, f, ts.qs, 10, filter, Params{})
			t.Logf("%s: filter passing %.1f%% (%d items): recall@10 %.4f", m, 100*frac, filter.GetCardinality()-1, r)
			if r < 0.95 {
				t.Errorf("%s: filter %.1f%%: recall@10 %.4f < 0.95", m, 100*frac, r)
			}
		}
		// Fewer passing than k: all of them.
		few := roaring.BitmapOf(ts.ids[0], ts.ids[1], ts.ids[2])
		res, _ := h.Search(ts.qs[0], 10, few, Params{})
		if len(res) != 3 {
			t.Errorf("%s: %d results for a filter of 3", m, len(res))
		}
		if res, _ := h.Search(ts.qs[0], 10, roaring.New(), Params{}); len(res) != 0 {
			t.Errorf("%s: %d results for an empty filter", m, len(res))
		}
	}
}

// TestHNSWFilteredWalk checks the walk itself (not the exact fallback) on
// filters of medium selectivity.
func TestHNSWFilteredWalk(t *testing.T) {
	const seed = 5
	t.Logf("seed %d", seed)
	n, nq := testSize(t)
	ts := newTestSet(seed, n, 32, 50, nq)
	rng := rand.New(rand.NewPCG(seed, 3))
	h, f := buildBoth(t, ts, 32, L2, HNSWOptions{Seed: seed})
	for _, frac := range []float64{0.5, 0.1, 0.05} {
		filter := roaring.New()
		for _, id := range ts.ids {
			if rng.Float64() < frac {
				filter.Add(id)
			}
		}
		var sum float64
		sc := &hnswScratch{}
		for _, q := range ts.qs {
			pq := query{v: q, n2: dot(q, q)}
			got := h.walk(sc, pq, 10, 64, filter)
			want, _ := f.Search(q, 10, filter, Params{})
			for _, r := range got {
				if !filter.Contains(r.ID) {
					t.Fatalf("walk returned %d outside the filter", r.ID)
				}
			}
			sum += recallAt(got, want)
		}
		r := sum / float64(len(ts.qs))
		t.Logf("walk only, filter %.0f%%: recall@10 %.4f", 100*frac, r)
		if r < 0.95 {
			t.Errorf("walk only, filter %.0f%%: recall@10 %.4f < 0.95", 100*frac, r)
		}
	}
}

func TestHNSWSmallAndEdges(t *testing.T) {
	h, err := NewHNSW(3, Cosine, HNSWOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := h.Search([]float32{1, 0, 0}, 3, nil, Params{}); err != nil || len(res) != 0 {
		t.Fatalf("empty index: %v %v", res, err)
	}
	h.Add(1, []float32{1, 0, 0})
	h.Add(2, []float32{0, 1, 0})
	h.Add(3, []float32{2, 0, 0}) // same direction as 1: tie, lower ID first
	res, _ := h.Search([]float32{5, 0, 0}, 10, nil, Params{})
	if len(res) != 3 || res[0].ID != 1 || res[1].ID != 3 || res[2].ID != 2 {
		t.Fatalf("got %v", res)
	}
	if math.Abs(float64(res[0].Score)-1) > 1e-6 {
		t.Errorf("cosine score %v, want 1", res[0].Score)
	}
	if _, err := h.Search([]float32{1}, 1, nil, Params{}); !errors.Is(err, ErrDimension) {
		t.Errorf("wrong query dimension: %v", err)
	}
	if err := h.Add(4, []float32{1}); !errors.Is(err, ErrDimension) {
		t.Errorf("wrong vector dimension: %v", err)
	}
	if res, _ := h.Search([]float32{1, 0, 0}, 0, nil, Params{}); res != nil {
		t.Errorf("k=0 returned %v", res)
	}
	if _, err := h.Search([]float32{1, 0, 0}, 1, nil, Params{Ef: -1}); err == nil {
		t.Error("negative Ef accepted")
	}
	err = HNSWOptions{M: 1, EfConstruction: -1, EfSearch: -2}.Validate()
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Validate: %v", err)
	}
	var p *wpcerr.Problems
	if !errors.As(err, &p) || len(p.List) != 3 {
		got := 0
		if p != nil {
			got = len(p.List)
		}
		t.Errorf("Validate collected %d problems, want 3: %v", got, err)
	}
	if _, err := NewHNSW(3, L2, HNSWOptions{M: 1}); err == nil {
		t.Error("M=1 accepted")
	}
	if _, err := NewHNSW(0, L2, HNSWOptions{}); err == nil {
		t.Error("dimension 0 accepted")
	}
	var o HNSWOptions
	o.EnsureDefaults()
	if o != (HNSWOptions{M: 16, EfConstruction: 200, EfSearch: 64}) {
		t.Errorf("defaults %+v", o)
	}
}

func TestHNSWConcurrent(t *testing.T) {
	const seed = 3
	ts := newTestSet(seed, 1500, 16, 20, 20)
	h, _ := NewHNSW(16, L2, HNSWOptions{Seed: seed, EfConstruction: 64})
	for _, id := range ts.ids[:500] {
		h.Add(id, ts.vecs[id])
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			filter := roaring.New()
			for _, id := range ts.ids[:1000:1000] {
				if id%3 == 0 {
					filter.Add(id)
				}
			}
			for i := 0; i < 200; i++ {
				var fl *roaring.Bitmap
				if i%2 == 0 {
					fl = filter
				}
				if _, err := h.Search(ts.qs[i%len(ts.qs)], 10, fl, Params{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i, id := range ts.ids[500:] {
		h.Add(id, ts.vecs[id])
		if i%4 == 0 {
			h.Delete(ts.ids[i])
		}
	}
	wg.Wait()
}

func TestHNSWSearchAllocs(t *testing.T) {
	if raceflag.Enabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	ts := newTestSet(1, 2000, 16, 20, 1)
	h, _ := buildBoth(t, ts, 16, L2, HNSWOptions{Seed: 1, EfConstruction: 64})
	q := ts.qs[0]
	filter := roaring.New()
	for _, id := range ts.ids[:1800] { // enough to be walked, not scanned
		filter.Add(id)
	}
	h.Search(q, 10, nil, Params{}) // warm the pool
	for _, fl := range []*roaring.Bitmap{nil, filter} {
		allocs := testing.AllocsPerRun(100, func() { h.Search(q, 10, fl, Params{}) })
		if allocs > 1 {
			t.Errorf("search allocates %.1f times per call (filter %v), want ≤ 1 (the results)", allocs, fl != nil)
		}
	}
}

// TestHNSWDeleteHubs deletes every node of the upper layers (the hubs the
// walks go through) and the entry, the hardest deletes for connectivity.
func TestHNSWDeleteHubs(t *testing.T) {
	const seed = 8
	t.Logf("seed %d", seed)
	n, nq := testSize(t)
	ts := newTestSet(seed, n, 32, 50, nq)
	for _, m := range []Metric{InnerProduct, L2} {
		h, f := buildBoth(t, ts, 32, m, HNSWOptions{Seed: seed})
		var hubs []uint32
		for s, l := range h.levels {
			if l > 0 {
				hubs = append(hubs, h.ids[s])
			}
		}
		for _, id := range hubs {
			h.Delete(id)
			f.Delete(id)
		}
		h.mu.Lock()
		h.repair(h.getScratch()) // whatever the tombstone count
		h.mu.Unlock()
		r := meanRecall(t, h, f, ts.qs, 10, nil, Params{})
		t.Logf("%s: recall@10 after deleting the %d upper-layer nodes: %.4f", m, len(hubs), r)
		if r < 0.95 {
			t.Errorf("%s: recall@10 after deleting hubs %.4f < 0.95", m, r)
		}
	}
}

// TestBeamPool drives the beam of a layer search with random distinct
// scores, admitted or traversed-only, inserted under the walk's rule (only
// above the bound once full) and expanded now and then, and checks it
// against a plain list of everything accepted: it is sorted best first;
// its admitted entries are the best min(ef, #accepted admitted) accepted;
// once full it ends at its ef-th admitted entry and keeps every accepted
// traversed-only entry above that; next returns the best unexpanded entry
// (seed 33).
func TestBeamPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 0))
	for trial := 0; trial < 200; trial++ {
		ef := 1 + rng.IntN(40)
		var p beamPool
		p.reset(ef)
		type acc struct {
			c        cand
			admitted bool
		}
		var accepted []acc
		expanded := map[uint32]bool{}
		for op := 0; op < 300; op++ {
			if rng.IntN(4) == 0 {
				key, ok := p.next()
				best := uint32(0)
				found := false
				for _, e := range p.e {
					if !expanded[e.key] {
						best, found = e.key, true
						break
					}
				}
				if ok != found || ok && key != best {
					t.Fatalf("trial %d: next = %d, %v; want %d, %v", trial, key, ok, best, found)
				}
				expanded[key] = true
				continue
			}
			c := cand{score: rng.Float32(), key: uint32(1000*trial + op)}
			adm := rng.IntN(3) > 0
			if p.full() && !(c.score > p.bound()) {
				continue
			}
			p.insert(c, adm)
			accepted = append(accepted, acc{c, adm})
			// The reference: the accepted entries, best first.
			ref := slices.Clone(accepted)
			slices.SortFunc(ref, func(a, b acc) int { return compareCands(a.c, b.c) })
			var want []acc
			admitted := 0
			for _, r := range ref {
				if admitted == ef {
					break
				}
				want = append(want, r)
				if r.admitted {
					admitted++
				}
			}
			if admitted == ef { // full: the pool ends at the ef-th admitted
				for !want[len(want)-1].admitted {
					want = want[:len(want)-1]
				}
			}
			if len(p.e) != len(want) {
				t.Fatalf("trial %d op %d: %d entries, want %d", trial, op, len(p.e), len(want))
			}
			for i, w := range want {
				if p.e[i].cand != w.c || (p.e[i].flags&poolAdmitted != 0) != w.admitted {
					t.Fatalf("trial %d op %d: entry %d = %+v, want %+v", trial, op, i, p.e[i], w)
				}
			}
			if p.full() != (admitted == ef) {
				t.Fatalf("trial %d op %d: full %v with %d admitted of %d", trial, op, p.full(), admitted, ef)
			}
		}
	}
}
