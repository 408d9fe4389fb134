package index

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

// addBoth adds the test set's vectors to the index and to the oracle.
func addBoth(idx *Tiered, f *Flat, ts *testSet) {
	for _, id := range ts.ids {
		idx.Add(id, ts.vecs[id])
		f.Add(id, ts.vecs[id])
	}
}

// tieredRecall compares t against a Flat oracle over the same vectors,
// failing on a result the oracle does not hold, a filtered-out ID, a short
// answer or a wrong order.
func tieredRecall(tb testing.TB, idx *Tiered, f *Flat, qs [][]float32, k int, filter *roaring.Bitmap) float64 {
	tb.Helper()
	var sum float64
	for qi, q := range qs {
		got, err := idx.Search(q, k, filter, Params{})
		if err != nil {
			tb.Fatal(err)
		}
		want, _ := f.Search(q, k, filter, Params{})
		if len(got) != len(want) {
			tb.Fatalf("query %d: %d results, want %d", qi, len(got), len(want))
		}
		seen := map[uint32]bool{}
		for i, r := range got {
			if !f.Contains(r.ID) || seen[r.ID] {
				tb.Fatalf("query %d: returned %d, not indexed or twice", qi, r.ID)
			}
			seen[r.ID] = true
			if filter != nil && !filter.Contains(r.ID) {
				tb.Fatalf("query %d: returned %d, which the filter excludes", qi, r.ID)
			}
			if i > 0 && better(r, got[i-1]) {
				tb.Fatalf("query %d: results out of order at %d", qi, i)
			}
		}
		sum += recallAt(got, want)
	}
	return sum / float64(len(qs))
}

// TestTieredBuildsGraph: below GraphAt the index is flat and exact; past
// it the builder moves every vector into the graph, and searches during
// and after the move keep recall against the oracle for every metric.
func TestTieredBuildsGraph(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 1500, 24, 12, 40)
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		idx, err := NewTiered(24, m, TieredOptions{GraphAt: 500})
		if err != nil {
			t.Fatal(err)
		}
		f := NewFlat(24, m)
		for i, id := range ts.ids {
			if err := idx.Add(id, ts.vecs[id]); err != nil {
				t.Fatal(err)
			}
			f.Add(id, ts.vecs[id])
			if i == 400 {
				if idx.HasGraph() {
					t.Fatalf("%s: graph built at %d vectors, GraphAt 500", m, i+1)
				}
				if r := tieredRecall(t, idx, f, ts.qs, 10, nil); r != 1 {
					t.Fatalf("%s: flat phase recall %.3f, want exactly 1", m, r)
				}
			}
		}
		// Mid-build (or after): complete and ordered.
		if r := tieredRecall(t, idx, f, ts.qs, 10, nil); r < 0.9 {
			t.Fatalf("%s: recall %.3f during the build", m, r)
		}
		idx.Wait()
		g, b := idx.Status()
		if !idx.HasGraph() || b != 0 || g != len(ts.ids) || idx.Len() != len(ts.ids) {
			t.Fatalf("%s: after Wait: graph %v, %d in graph, %d buffered, len %d; want all %d in the graph", m, idx.HasGraph(), g, b, idx.Len(), len(ts.ids))
		}
		if r := tieredRecall(t, idx, f, ts.qs, 10, nil); r < 0.95 {
			t.Fatalf("%s: recall@10 %.3f after the build, want ≥ 0.95", m, r)
		}
		idx.Stop()
	}
}

// TestTieredReplaceDelete: a replaced vector is found by its new value
// only; deleted IDs never return, from the buffer or the graph.
func TestTieredReplaceDelete(t *testing.T) {
	const seed = 8
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 600, 16, 8, 30)
	more := newTestSet(seed, 800, 16, 8, 0) // the same clusters, 200 more vectors
	idx, _ := NewTiered(16, L2, TieredOptions{GraphAt: 1})
	defer idx.Stop()
	f := NewFlat(16, L2)
	addBoth(idx, f, ts)
	idx.Wait()
	// Replace 100 vectors (some land in the buffer, then move), delete 100.
	deleted := roaring.New()
	for i, id := range ts.ids {
		switch {
		case i%6 == 0:
			v := more.vecs[more.ids[600+i/6]]
			idx.Add(id, v)
			f.Add(id, v)
			ts.vecs[id] = v
		case i%6 == 1:
			idx.Delete(id)
			f.Delete(id)
			deleted.Add(id)
		}
	}
	check := func(when string) {
		if idx.Len() != f.Len() || !idx.IDs().Equals(f.IDs()) {
			t.Fatalf("%s: index holds %d IDs, oracle %d (or other IDs)", when, idx.Len(), f.Len())
		}
		for i, id := range ts.ids {
			if i%6 != 0 {
				continue
			}
			res, _ := idx.Search(ts.vecs[id], 10, nil, Params{Ef: 200})
			if !slices.ContainsFunc(res, func(r Result) bool { return r.ID == id }) {
				t.Fatalf("%s: replaced %d not found by its new vector: %v", when, id, res)
			}
		}
		for _, q := range ts.qs {
			res, _ := idx.Search(q, 50, nil, Params{})
			for _, r := range res {
				if deleted.Contains(r.ID) {
					t.Fatalf("%s: deleted %d returned", when, r.ID)
				}
			}
		}
	}
	check("before the builder catches up")
	idx.Wait()
	check("after")
	if r := tieredRecall(t, idx, f, ts.qs, 10, nil); r < 0.95 {
		t.Fatalf("recall@10 %.3f after replacements and deletes", r)
	}
}

// TestTieredFilter: filters apply in both tiers, including one passing
// fewer than k items.
func TestTieredFilter(t *testing.T) {
	const seed = 9
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 1000, 16, 8, 20)
	idx, _ := NewTiered(16, InnerProduct, TieredOptions{GraphAt: 300})
	defer idx.Stop()
	f := NewFlat(16, InnerProduct)
	addBoth(idx, f, ts)
	for _, every := range []int{2, 10, 200} {
		filter := roaring.New()
		for i, id := range ts.ids {
			if i%every == 0 {
				filter.Add(id)
			}
		}
		if r := tieredRecall(t, idx, f, ts.qs, 10, filter); r < 0.9 {
			t.Fatalf("filter 1/%d: recall %.3f", every, r)
		}
	}
}

// TestTieredConcurrent: writers, deleters and searchers race the builder
// (run with -race); the final contents equal the oracle's.
func TestTieredConcurrent(t *testing.T) {
	const seed = 10
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 800, 12, 6, 20)
	idx, _ := NewTiered(12, Cosine, TieredOptions{GraphAt: 100})
	defer idx.Stop()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, id := range ts.ids {
				if i%2 == w {
					idx.Add(id, ts.vecs[id])
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			res, err := idx.Search(ts.qs[i%len(ts.qs)], 10, nil, Params{})
			if err != nil {
				t.Error(err)
				return
			}
			for j := 1; j < len(res); j++ {
				if res[j].ID == res[j-1].ID {
					t.Errorf("duplicate %d in results", res[j].ID)
					return
				}
			}
		}
	}()
	wg.Wait()
	for i, id := range ts.ids {
		if i%5 == 0 {
			idx.Delete(id)
		}
	}
	idx.Wait()
	want := roaring.New()
	for i, id := range ts.ids {
		if i%5 != 0 {
			want.Add(id)
		}
	}
	if !idx.IDs().Equals(want) || idx.Len() != int(want.GetCardinality()) {
		t.Fatalf("index holds %d IDs, want %d", idx.Len(), want.GetCardinality())
	}
}

// TestTieredSaveLoad: a save taken while the builder runs loads back with
// the same IDs and vectors, and the loaded index finishes the build.
func TestTieredSaveLoad(t *testing.T) {
	const seed = 11
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 1200, 16, 8, 20)
	opts := TieredOptions{GraphAt: 200, HNSW: HNSWOptions{M: 8}}
	idx, _ := NewTiered(16, L2, opts)
	f := NewFlat(16, L2)
	addBoth(idx, f, ts)
	p := memPersister{}
	if err := idx.Save(p); err != nil {
		t.Fatal(err)
	}
	_, buffered := idx.Status()
	idx.Stop()
	t.Logf("saved with %d buffered", buffered)
	got, err := LoadTiered(p, opts)
	if err != nil || got == nil {
		t.Fatalf("LoadTiered: %v, %v", got, err)
	}
	defer got.Stop()
	if !got.IDs().Equals(f.IDs()) {
		t.Fatalf("loaded %d IDs, saved %d", got.Len(), f.Len())
	}
	got.Wait()
	if _, b := got.Status(); b != 0 || !got.HasGraph() {
		t.Fatalf("loaded index did not finish the build: %d buffered", b)
	}
	for _, id := range ts.ids[:100] {
		res, _ := got.Search(ts.vecs[id], 1, nil, Params{Ef: 64})
		if len(res) != 1 || res[0].ID != id || res[0].Score != 0 {
			t.Fatalf("vector of %d not found at distance 0 after load: %v", id, res)
		}
	}
	if r := tieredRecall(t, got, f, ts.qs, 10, nil); r < 0.95 {
		t.Fatalf("recall %.3f after load", r)
	}

	// Corruption is reported, not loaded.
	bad := memPersister{}
	for k, v := range p {
		bad[k] = append([]byte(nil), v...)
	}
	bad[tieredBlobName][0] = 'X'
	if _, err := LoadTiered(bad, opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt header: %v, want ErrCorrupt", err)
	}
	delete(bad, tieredBlobName)
	if idx, err := LoadTiered(bad, opts); idx != nil || err != nil {
		t.Fatalf("no saved index: %v, %v; want nil, nil", idx, err)
	}
	bad = memPersister{tieredBlobName: p[tieredBlobName], pendingBlobName: p[pendingBlobName]}
	if _, err := LoadTiered(bad, opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("graph blob missing: %v, want ErrCorrupt", err)
	}
}

func TestTieredErrors(t *testing.T) {
	if _, err := NewTiered(0, L2, TieredOptions{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("dim 0: %v", err)
	}
	if _, err := NewTiered(4, L2, TieredOptions{HNSW: HNSWOptions{M: 1}}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("M 1: %v", err)
	}
	idx, _ := NewTiered(4, L2, TieredOptions{GraphAt: 1})
	defer idx.Stop()
	if err := idx.Add(1, []float32{1, 2, 3}); !errors.Is(err, ErrDimension) {
		t.Fatalf("wrong dimension: %v", err)
	}
	if _, err := idx.Search([]float32{1}, 3, nil, Params{}); !errors.Is(err, ErrDimension) {
		t.Fatalf("wrong query dimension: %v", err)
	}
	if idx.Len() != 0 {
		t.Fatalf("a refused add changed the index: len %d", idx.Len())
	}
}

// TestTieredInnerProduct: inner-product scores are inner products, and
// recall holds through a save and load.
func TestTieredInnerProduct(t *testing.T) {
	const seed = 12
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 1000, 8, 8, 50)
	idx, _ := NewTiered(8, InnerProduct, TieredOptions{GraphAt: 1})
	defer idx.Stop()
	f := NewFlat(8, InnerProduct)
	addBoth(idx, f, ts)
	idx.Wait()
	p := memPersister{}
	if err := idx.Save(p); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTiered(p, TieredOptions{GraphAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Stop()
	if !got.IDs().Equals(f.IDs()) {
		t.Fatalf("loaded %d IDs, want %d", got.Len(), f.Len())
	}
	if r := tieredRecall(t, got, f, ts.qs, 10, nil); r < 0.95 {
		t.Fatalf("after load: recall@10 %.3f", r)
	}
	for _, q := range ts.qs[:10] {
		a, _ := got.Search(q, 5, nil, Params{})
		for _, r := range a {
			want := dot(q, ts.vecs[r.ID])
			if d := r.Score - want; d > 1e-3*(1+abs32(want)) || d < -1e-3*(1+abs32(want)) {
				t.Fatalf("id %d: score %g, inner product %g", r.ID, r.Score, want)
			}
		}
	}
}

func abs32(x float32) float32 { return max(x, -x) }

// TestTieredLoadMidMove: a save taken while a vector moves holds it in
// the buffer and the graph; the loaded index counts it once and keeps the
// buffer's version.
func TestTieredLoadMidMove(t *testing.T) {
	ts := newTestSet(13, 300, 8, 4, 0)
	idx, _ := NewTiered(8, L2, TieredOptions{GraphAt: 1})
	for _, id := range ts.ids {
		idx.Add(id, ts.vecs[id])
	}
	idx.Wait()
	idx.Stop()
	p := memPersister{}
	if err := idx.Save(p); err != nil {
		t.Fatal(err)
	}
	// Rewrite the buffer as if ts.ids[0] were moving, with a newer vector.
	moving := ts.ids[0]
	newer := []float32{9, 9, 9, 9, 9, 9, 9, 9}
	buf := NewFlat(8, L2)
	buf.Add(moving, newer)
	if err := buf.saveAs(p, pendingBlobName); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTiered(p, TieredOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Stop()
	if got.Len() != len(ts.ids) {
		t.Fatalf("len %d, want %d", got.Len(), len(ts.ids))
	}
	res, _ := got.Search(newer, 1, nil, Params{})
	if len(res) != 1 || res[0].ID != moving || res[0].Score != 0 {
		t.Fatalf("the buffer's version of %d is not the one searched: %v", moving, res)
	}
	res, _ = got.Search(ts.vecs[moving], 3, nil, Params{Ef: 100})
	for _, r := range res {
		if r.ID == moving {
			t.Fatalf("the graph's stale copy of %d was kept: %v", moving, res)
		}
	}
}

// TestTieredCodesOnly: a graph keeping codes alone holds no vectors,
// finds most of the exact top 10, and loads back identical; an index that
// wants vectors refuses it, and a saved graph with vectors drops them when
// loaded into an index that keeps codes alone.
func TestTieredCodesOnly(t *testing.T) {
	const seed = 19
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 1200, 32, 8, 30)
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		opts := TieredOptions{GraphAt: 1, HNSW: HNSWOptions{M: 8, Seed: seed}, CodesOnly: true}
		idx, _ := NewTiered(32, m, opts)
		f := NewFlat(32, m)
		addBoth(idx, f, ts)
		idx.Wait()
		if g := idx.graph; g == nil || !g.CodesOnly() || g.vecs != nil || len(g.codes) != 32*len(ts.ids) {
			t.Fatalf("%s: graph keeps vectors (or no codes)", m)
		}
		r := tieredRecall(t, idx, f, ts.qs, 10, nil)
		t.Logf("%s: recall@10 %.3f by codes alone", m, r)
		if r < 0.9 {
			t.Fatalf("%s: recall@10 %.3f by codes alone", m, r)
		}
		p := memPersister{}
		if err := idx.Save(p); err != nil {
			t.Fatal(err)
		}
		got, err := LoadTiered(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range ts.qs {
			a, _ := idx.Search(q, 10, nil, Params{})
			b, _ := got.Search(q, 10, nil, Params{})
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: results differ after load:\n%v\n%v", m, a, b)
			}
		}
		got.Stop()
		if _, err := LoadTiered(p, TieredOptions{GraphAt: 1}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: codes-only graph loaded where vectors are needed: %v", m, err)
		}
		idx.Stop()

		// Saved with vectors, loaded into codes alone.
		opts.CodesOnly = false
		withVecs, _ := NewTiered(32, m, opts)
		addBoth(withVecs, NewFlat(32, m), ts)
		withVecs.Wait()
		p = memPersister{}
		withVecs.Save(p)
		withVecs.Stop()
		opts.CodesOnly = true
		got, err = LoadTiered(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !got.graph.CodesOnly() || got.graph.vecs != nil {
			t.Fatalf("%s: loaded graph kept its vectors", m)
		}
		got.Stop()
	}
}

// TestFlatCodes: a buffer of codes (a flat first stage that only prunes)
// scores each vector within quant.go's bound of the float scan, gives the
// same estimate on the filter path as on the panel scan, finds most of the
// exact top 10, keeps its IDs through deletes and replaces, and loads back
// with the same results.
func TestFlatCodes(t *testing.T) {
	const seed = 23
	t.Logf("seed %d", seed)
	for _, dim := range []int{13, 64} {
		ts := newTestSet(seed, 700, dim, 8, 20)
		for _, m := range []Metric{InnerProduct, Cosine, L2} {
			opts := TieredOptions{GraphAt: 0, CodesOnly: true}
			idx, _ := NewTiered(dim, m, opts)
			f := NewFlat(dim, m)
			addBoth(idx, f, ts)
			if idx.pending.codes == nil || idx.pending.panels != nil {
				t.Fatalf("%s: the buffer keeps float32 vectors", m)
			}
			for i, id := range ts.ids[:200] { // deletes and replaces
				if i%2 == 0 {
					idx.Delete(id)
					f.Delete(id)
				} else {
					v := ts.vecs[ts.ids[len(ts.ids)-1-i]]
					idx.Add(id, v)
					f.Add(id, v)
				}
			}
			if !idx.IDs().Equals(f.IDs()) {
				t.Fatalf("%s: %d IDs, want %d", m, idx.Len(), f.Len())
			}
			all := roaring.New()
			for _, id := range f.IDs().ToArray()[:50] {
				all.Add(id)
			}
			var found, total int
			for _, q := range ts.qs {
				exact, _ := f.Search(q, f.Len(), nil, Params{})
				want := map[uint32]float32{}
				for _, r := range exact {
					want[r.ID] = r.Score
				}
				got, _ := idx.Search(q, f.Len(), nil, Params{})
				if len(got) != len(exact) {
					t.Fatalf("%s dim %d: %d results of %d", m, dim, len(got), len(exact))
				}
				est := map[uint32]float32{}
				pq := prepare(m, q, nil)
				var q1 float64
				for _, x := range pq {
					q1 += math.Abs(float64(x))
				}
				for _, r := range got {
					est[r.ID] = r.Score
					// quant.go's bound, with |v|₁ ≤ sqrt(dim)·|v| and the scales
					// at most max|·|/127 ≤ |·|/127.
					v := ts.vecsOf(f, r.ID)
					var v1, vn, qn float64
					for _, x := range v {
						v1 += math.Abs(float64(x))
						vn = math.Max(vn, math.Abs(float64(x)))
					}
					for _, x := range pq {
						qn = math.Max(qn, math.Abs(float64(x)))
					}
					bound := qn/127/2*v1 + vn/127/2*q1 + float64(dim)*qn*vn/127/127/4
					if m == L2 {
						bound *= 2
					}
					if d := math.Abs(float64(r.Score - want[r.ID])); d > bound*1.001+1e-5 {
						t.Fatalf("%s dim %d: id %d estimate %v, exact %v: off by %v > %v", m, dim, r.ID, r.Score, want[r.ID], d, bound)
					}
				}
				sub, _ := idx.Search(q, 10, all, Params{})
				for _, r := range sub {
					if r.Score != est[r.ID] {
						t.Fatalf("%s: filter path scores %d at %v, the scan at %v", m, r.ID, r.Score, est[r.ID])
					}
				}
				top, _ := idx.Search(q, 10, nil, Params{})
				total += 10
				found += int(recallAt(top, exact[:10])*10 + 0.5)
			}
			if r := float64(found) / float64(total); r < 0.9 {
				t.Fatalf("%s dim %d: recall@10 %.3f by codes", m, dim, r)
			}
			p := memPersister{}
			if err := idx.Save(p); err != nil {
				t.Fatal(err)
			}
			got, err := LoadTiered(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range ts.qs {
				a, _ := idx.Search(q, 10, nil, Params{})
				b, _ := got.Search(q, 10, nil, Params{})
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("%s dim %d: results differ after load:\n%v\n%v", m, dim, a, b)
				}
			}
			got.Stop()
			// The saved buffer holds the codes' values: an index that needs
			// its vectors (an exact first stage) must refuse it.
			if _, err := LoadTiered(p, TieredOptions{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s dim %d: a buffer saved from codes loaded where vectors are needed: %v", m, dim, err)
			}
			if st, ok, err := SavedTieredStatus(p); err != nil || !ok || st.HasGraph || st.Buffered != idx.Len() {
				t.Fatalf("%s dim %d: saved status %+v, %v, %v", m, dim, st, ok, err)
			}
			idx.Stop()
		}
	}
}

// vecsOf is id's vector as f holds it (prepared).
func (ts *testSet) vecsOf(f *Flat, id uint32) []float32 {
	v := make([]float32, f.dim)
	f.vec(f.slot[id], v)
	return v
}
