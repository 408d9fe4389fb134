package pointindex

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/order"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// corpus is a seeded, topic-clustered set of clouds shaped like token
// embeddings: a vocabulary of token centres with a Zipf long tail, topics
// that favour a few tokens, points scattered near their token (many near
// duplicates).
type corpus struct {
	d      int
	vocab  [][]float64
	topics [][]int
	items  []wpcsim.Cloud
}

func newCorpus(seed uint64, n, d, minPts, maxPts int) *corpus {
	rng := wpctest.NewRand(seed)
	c := &corpus{d: d}
	for range 400 {
		v := make([]float64, d)
		for k := range v {
			v[k] = rng.NormFloat64()
		}
		c.vocab = append(c.vocab, v)
	}
	for range 25 {
		t := make([]int, 12)
		for i := range t {
			t[i] = rng.IntN(len(c.vocab))
		}
		c.topics = append(c.topics, t)
	}
	for range n {
		m := minPts + rng.IntN(maxPts-minPts+1)
		c.items = append(c.items, c.cloud(rng, m, false))
	}
	return c
}

// cloud draws m points of a random topic; signed weights when signed, else
// unit weights as ColBERT's queries have.
func (c *corpus) cloud(rng *rand.Rand, m int, signed bool) wpcsim.Cloud {
	topic := c.topics[rng.IntN(len(c.topics))]
	out := wpcsim.Cloud{Dim: c.d, Weights: make([]float32, m), Points: make([]float32, m*c.d)}
	for i := range m {
		var tok int
		if rng.Float64() < 0.75 {
			tok = topic[rng.IntN(len(topic))]
		} else {
			// Zipf-like: token t with probability ∝ 1/(t+1).
			tok = int(math.Exp(rng.Float64()*math.Log(float64(len(c.vocab))))) - 1
		}
		for k := range c.d {
			out.Points[i*c.d+k] = float32(c.vocab[tok][k] + 0.35*rng.NormFloat64())
		}
		out.Weights[i] = 1
		if signed {
			out.Weights[i] = float32(math.Pow(10, rng.Float64()) * []float64{1, -1}[rng.IntN(3)/2])
		}
	}
	return out
}

func (c *corpus) source() Source {
	return func(fn func(uint32, wpcsim.Cloud) error) error {
		for i, x := range c.items {
			if err := fn(uint32(i), x); err != nil {
				return err
			}
		}
		return nil
	}
}

// exactTop is the oracle: the k best items of ids by float64 MaxSim (sum
// units), ties by ID.
func exactTop(q wpcsim.Cloud, items []wpcsim.Cloud, ids []uint32, k int) ([]uint32, map[uint32]float64) {
	o := wpctest.Oracle{Terms: []wpctest.Term{{Kind: "maxsim", Alpha: 1}}, Sum: true}
	score := map[uint32]float64{}
	for _, id := range ids {
		x := items[id]
		g, _ := o.G(wpctest.Cloud{Dim: q.Dim, Weights: q.Weights, Points: q.Points}, wpctest.Cloud{Dim: x.Dim, Weights: x.Weights, Points: x.Points})
		score[id] = g
	}
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uint32) int {
		if c := cmp.Compare(score[b], score[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return out[:min(k, len(out))], score
}

func allIDs(n int) []uint32 {
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	return ids
}

// recall is the share of the exact top k found among hits.
func recall(hits []Hit, truth []uint32) float64 {
	found := 0
	for _, t := range truth {
		if slices.ContainsFunc(hits, func(h Hit) bool { return h.IID == t }) {
			found++
		}
	}
	return float64(found) / float64(len(truth))
}

// forEachLayout runs f with the resident lists kept as read and estimated
// through float tables, and as nibble blocks estimated through
// quantized tables (useNibbles, the AVX-512BW machines' layout; its
// generic twin elsewhere).
func forEachLayout(t *testing.T, f func(t *testing.T)) {
	saved := useNibbles
	defer func() { useNibbles = saved }()
	for _, nib := range []bool{false, true} {
		t.Run(map[bool]string{false: "float", true: "nibbles"}[nib], func(t *testing.T) {
			useNibbles = nib
			f(t)
		})
	}
}

// TestRecall: the point index's top 100 holds the exact top 10 on a
// clustered set, for unit-weight and signed-weight queries, with and
// without a filter passing a third of the items.
func TestRecall(t *testing.T) { forEachLayout(t, testRecall) }

func testRecall(t *testing.T) {
	const seed = 16
	t.Logf("seed %d", seed)
	c := newCorpus(seed, 800, 32, 8, 60)
	x, err := Build(c.d, c.source(), Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	st := x.Stats()
	t.Logf("stats %+v", st)
	var third []uint32
	allowed := roaring.New()
	for i := range c.items {
		if i%3 == 0 {
			third = append(third, uint32(i))
			allowed.Add(uint32(i))
		}
	}
	rng := wpctest.NewRand(seed + 1)
	for _, tc := range []struct {
		name   string
		signed bool
		filter bool
	}{{"unit", false, false}, {"signed", true, false}, {"unit-filtered", false, true}} {
		var sum, sum10 float64
		const nq = 30
		for range nq {
			q := c.cloud(rng, 16, tc.signed)
			ids, filter := allIDs(len(c.items)), (*roaring.Bitmap)(nil)
			if tc.filter {
				ids, filter = third, allowed
			}
			truth, _ := exactTop(q, c.items, ids, 10)
			hits, err := x.Search(q, 100, filter, Params{})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				if tc.filter && !allowed.Contains(h.IID) {
					t.Fatalf("%s: hit %d does not pass the filter", tc.name, h.IID)
				}
			}
			sum += recall(hits, truth)
			sum10 += recall(hits[:min(10, len(hits))], truth)
		}
		r, r10 := sum/nq, sum10/nq
		t.Logf("%s: recall@10 in the top 100 %.3f, of the estimate's own top 10 %.3f", tc.name, r, r10)
		if r < 0.97 {
			t.Errorf("%s: recall@10 at depth 100 %.3f < 0.97 (seed %d)", tc.name, r, seed)
		}
	}
}

// TestEstimateBound: with every centroid probed, each item's estimate is
// within Σ|v_i| · MaxResidualError of its exact MaxSim (Search's doc), plus
// with nibble tables their rounding (nbytes·step a point, at most a few
// 1e-3 here: within the bound's slack).
func TestEstimateBound(t *testing.T) { forEachLayout(t, testEstimateBound) }

func testEstimateBound(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	var errs []float64
	for _, bits := range []int{2, 4} {
		c := newCorpus(seed, 120, 16, 4, 20)
		x, err := Build(c.d, c.source(), Options{Seed: seed, Centroids: 16, Bits: bits})
		if err != nil {
			t.Fatal(err)
		}
		eps := float64(x.Stats().MaxResidualError)
		rng := wpctest.NewRand(seed)
		var worst float64
		for range 10 {
			q := c.cloud(rng, 6, true)
			_, exact := exactTop(q, c.items, allIDs(len(c.items)), 1)
			hits, err := x.Search(q, len(c.items), nil, Params{NProbe: 16})
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != len(c.items) {
				t.Fatalf("bits %d: %d hits with every list probed, want %d", bits, len(hits), len(c.items))
			}
			var mass float64
			for _, v := range q.Weights {
				mass += math.Abs(float64(v))
			}
			bound := mass*eps + 1e-4*mass
			for _, h := range hits {
				diff := math.Abs(float64(h.Estimate) - exact[h.IID])
				worst = max(worst, diff/mass)
				if diff > bound {
					t.Fatalf("bits %d: item %d estimate %.5f, exact %.5f: off by %.5f > bound %.5f", bits, h.IID, h.Estimate, exact[h.IID], diff, bound)
				}
			}
		}
		t.Logf("bits %d: max residual error %.4f, worst error per unit weight %.4f", bits, eps, worst)
		errs = append(errs, eps)
	}
	if errs[1] >= errs[0] {
		t.Errorf("4-bit residual error %.3f not below 2-bit's %.3f", errs[1], errs[0])
	}
}

// TestWrites: deletes are never returned, an upsert replaces the item's
// points (the query's own cloud becomes its best hit), the counts follow
// and every live item is found with every list probed.
func TestWrites(t *testing.T) {
	const seed = 3
	t.Logf("seed %d", seed)
	c := newCorpus(seed, 300, 16, 4, 30)
	x, err := Build(c.d, c.source(), Options{Seed: seed, Centroids: 32})
	if err != nil {
		t.Fatal(err)
	}
	rng := wpctest.NewRand(seed)
	q := c.cloud(rng, 8, false)
	before, err := x.Search(q, 20, nil, Params{})
	if err != nil {
		t.Fatal(err)
	}
	// Delete the best five: none may come back.
	gone := map[uint32]bool{}
	for _, h := range before[:5] {
		x.Delete(h.IID)
		gone[h.IID] = true
	}
	after, _ := x.Search(q, 20, nil, Params{})
	for _, h := range after {
		if gone[h.IID] {
			t.Fatalf("deleted item %d returned", h.IID)
		}
	}
	// Upsert item 299 with the query's cloud: it is now the best.
	if err := x.Add(299, q); err != nil {
		t.Fatal(err)
	}
	c.items[299] = q
	delete(gone, 299)
	top, _ := x.Search(q, 1, nil, Params{})
	if len(top) != 1 || top[0].IID != 299 {
		t.Fatalf("after upserting item 299 with the query, top hit %v", top)
	}
	// Delete two thirds: the postings left are the live items' points.
	for i := 0; i < 200; i++ {
		x.Delete(uint32(i))
		gone[uint32(i)] = true
	}
	st := x.Stats()
	want := 0
	for i, it := range c.items {
		if !gone[uint32(i)] {
			want += it.Len()
		}
	}
	if st.Points != want || st.Items != 300-len(gone) {
		t.Fatalf("stats %+v, want %d points of %d items", st, want, 300-len(gone))
	}
	if n, _ := x.store.DiskBytes(x.gen); n != int64(want*(st.BytesPerPoint))+8*int64(countLists(x)) {
		t.Fatalf("store holds %d bytes, want %d points of %d bytes", n, want, st.BytesPerPoint)
	}
	hits, _ := x.Search(q, 300, nil, Params{NProbe: 32})
	if len(hits) != st.Items {
		t.Fatalf("%d hits with every list probed, %d live items", len(hits), st.Items)
	}
	for _, h := range hits {
		if gone[h.IID] {
			t.Fatalf("deleted item %d returned", h.IID)
		}
	}
}

func TestBadInput(t *testing.T) {
	c := newCorpus(1, 20, 8, 2, 4)
	if _, err := Build(8, c.source(), Options{Bits: 3}); err == nil {
		t.Fatal("3 bits accepted")
	}
	if _, err := Build(8, c.source(), Options{Centroids: 1000}); err == nil {
		t.Fatal("more centroids than points accepted")
	}
	x, err := Build(8, c.source(), Options{Centroids: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Add(1, wpcsim.Cloud{Dim: 4, Weights: []float32{1}, Points: make([]float32, 4)}); err == nil {
		t.Fatal("wrong dimension accepted")
	}
	if _, err := x.Search(wpcsim.Cloud{Dim: 4, Weights: []float32{1}, Points: make([]float32, 4)}, 10, nil, Params{}); err == nil {
		t.Fatal("query of the wrong dimension accepted")
	}
}

// TestConcurrent: searches run while items are added and deleted (run
// with -race); afterwards the index holds exactly the live items.
func TestConcurrent(t *testing.T) {
	const seed = 9
	t.Logf("seed %d", seed)
	c := newCorpus(seed, 200, 8, 2, 10)
	x, err := Build(c.d, c.source(), Options{Seed: seed, Centroids: 16})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 150; i++ {
			if i%3 == 0 {
				x.Delete(uint32(i))
			} else if err := x.Add(uint32(200+i), c.items[i]); err != nil {
				t.Error(err)
			}
		}
	}()
	rng := wpctest.NewRand(seed)
	for i := 0; i < 50; i++ {
		if _, err := x.Search(c.cloud(rng, 3, false), 10, nil, Params{}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if st := x.Stats(); st.Items != 200-50+100 {
		t.Fatalf("%+v, want %d items", st, 200-50+100)
	}
}

// countLists is how many (list, item) values the index's memory store
// holds.
func countLists(x *Index) int {
	m := x.store.(*memStore)
	n := 0
	for k, l := range m.lists {
		if k[0] == x.gen {
			n += len(l)
		}
	}
	return n
}

// TestDrift: points drawn like the training data keep the drift ratio
// near 1; points of new topics (another vocabulary) raise it past the
// retrain threshold the root package uses (1.2).
func TestDrift(t *testing.T) {
	const seed = 31
	t.Logf("seed %d", seed)
	c := newCorpus(seed, 300, 32, 8, 40)
	x, err := Build(c.d, c.source(), Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	if r, n := x.Drift(); n != 0 || r != 0 {
		t.Fatalf("drift %.3f over %d points right after the build", r, n)
	}
	rng := wpctest.NewRand(seed + 1)
	for i := range 100 {
		if err := x.Add(uint32(1000+i), c.cloud(rng, 20, false)); err != nil {
			t.Fatal(err)
		}
	}
	same, n := x.Drift()
	t.Logf("same topics: drift %.3f over %d points", same, n)
	if n != 2000 || same > 1.1 || same < 0.9 {
		t.Fatalf("same topics: drift %.3f over %d points, want about 1 over 2000", same, n)
	}
	other := newCorpus(seed+100, 300, 32, 8, 40)
	for i, it := range other.items {
		if err := x.Add(uint32(2000+i), it); err != nil {
			t.Fatal(err)
		}
	}
	moved, n := x.Drift()
	t.Logf("new topics: drift %.3f over %d points", moved, n)
	if moved < 1.2 {
		t.Fatalf("new topics: drift %.3f < 1.2", moved)
	}
}

// TestResident: an index with every list resident and one with a budget
// for a few give the same hits as one reading every list from its store,
// through upserts of existing items, new items and deletes between
// searches (filtered and not): a resident list never serves a stale
// posting nor misses a new one.
func TestResident(t *testing.T) { forEachLayout(t, testResident) }

func testResident(t *testing.T) {
	const seed = 12
	t.Logf("seed %d", seed)
	c := newCorpus(seed, 300, 16, 4, 30)
	build := func(budget int64) *Index {
		x, err := Build(c.d, c.source(), Options{Seed: seed, Centroids: 32})
		if err != nil {
			t.Fatal(err)
		}
		x.SetResidentBytes(budget)
		return x
	}
	all, few, none := build(DefaultResidentBytes), build(4<<10), build(0)
	xs := []*Index{all, few, none}
	rng := wpctest.NewRand(seed)
	live := roaring.New()
	live.AddRange(0, 300)
	next := uint32(300)
	for step := range 60 {
		q := c.cloud(rng, 6, false)
		var filter *roaring.Bitmap
		if step%3 == 2 {
			filter = roaring.New()
			live.Iterate(func(v uint32) bool {
				if rng.IntN(3) == 0 {
					filter.Add(v)
				}
				return true
			})
		}
		p := Params{NProbe: 1 + rng.IntN(12)}
		want, err := none.Search(q, 30, filter, p)
		if err != nil {
			t.Fatal(err)
		}
		// Twice: the first search after writes reads the dropped lists
		// and copies the others (stale postings to skip); the second
		// scans the lists it kept in place (nibble blocks, with
		// useNibbles).
		for round := 0; round < 2; round++ {
			for i, x := range xs[:2] {
				got, err := x.Search(q, 30, filter, p)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d, round %d, index %d: hits %v, from the store %v", step, round, i, got, want)
				}
			}
		}
		// A few writes: an upsert of a live item, a new item, a delete.
		up := uint32(rng.IntN(int(next)))
		cl := c.cloud(rng, 2+rng.IntN(20), false)
		nw := c.cloud(rng, 2+rng.IntN(20), false)
		del := uint32(rng.IntN(int(next)))
		for _, x := range xs {
			if err := x.Add(up, cl); err != nil {
				t.Fatal(err)
			}
			if err := x.Add(next, nw); err != nil {
				t.Fatal(err)
			}
			if err := x.Delete(del); err != nil {
				t.Fatal(err)
			}
		}
		live.Add(up)
		live.Add(next)
		live.Remove(del)
		next++
	}
	if all.Stats().ResidentPostingBytes == 0 || none.Stats().ResidentPostingBytes != 0 {
		t.Fatalf("resident posting bytes %d with the default budget, %d with none", all.Stats().ResidentPostingBytes, none.Stats().ResidentPostingBytes)
	}
	if b := few.Stats().ResidentPostingBytes; b == 0 || b > 4<<10 {
		t.Fatalf("resident posting bytes %d with a budget of 4 KiB", b)
	}
}

// TestTopHits: topHits gives the first r of a full sort by (estimate
// desc, internal ID asc), ties included, for every r. Seed 16.
func TestTopHits(t *testing.T) {
	const seed = 16
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := 0; round < 200; round++ {
		n := rng.IntN(300)
		hits := make([]Hit, n)
		for i := range hits {
			// Few distinct estimates: many ties, broken by ID.
			hits[i] = Hit{IID: uint32(rng.IntN(1000)), Estimate: float32(rng.IntN(7))}
		}
		want := slices.Clone(hits)
		slices.SortFunc(want, func(a, b Hit) int { return order.Compare(a.Estimate, a.IID, b.Estimate, b.IID) })
		r := 1 + rng.IntN(n+2)
		got := topHits(slices.Clone(hits), r)
		if len(want) > r {
			want = want[:r]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: n %d r %d: got %v, want %v", round, n, r, got, want)
		}
	}
}

// TestNibbleLUT: for 2- and 4-bit codes, base + step·(the code's nibble
// lookups) is within nbytes·step of the float table's <q, r̂>, its
// entries are at most 127, and byteSums/dotSums give the same integer as
// the nibble lookups. Seed 18.
func TestNibbleLUT(t *testing.T) {
	const seed = 18
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, bits := range []int{2, 4} {
		for _, d := range []int{5, 64, 128} {
			qz := newQuantizer(d, bits)
			for i := range qz.val {
				qz.val[i] = float32(rng.NormFloat64() * 0.2)
			}
			q := make([]float32, d)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			table := qz.table(nil, q)
			lut, base, step, _ := qz.nibbleLUT(nil, q, nil)
			sums := byteSums(nil, lut, qz.nbytes)
			for _, v := range lut {
				if v > 127 {
					t.Fatalf("bits %d d %d: table entry %d > 127", bits, d, v)
				}
			}
			code := make([]byte, qz.nbytes)
			for range 200 {
				for i := range code {
					code[i] = byte(rng.IntN(256))
				}
				var s uint32
				for p, c := range code {
					s += uint32(lut[p*32+int(c&15)]) + uint32(lut[p*32+16+int(c>>4)])
				}
				if got := dotSums(sums, code); got != s {
					t.Fatalf("bits %d d %d: dotSums %d, nibble lookups %d", bits, d, got, s)
				}
				want := float64(dot(table, code))
				got := float64(base) + float64(step)*float64(s)
				if e := math.Abs(got - want); e > float64(qz.nbytes)*float64(step)+1e-5 {
					t.Fatalf("bits %d d %d: estimate %.6f, float table %.6f: off by %.3g > nbytes·step %.3g", bits, d, got, want, e, float64(qz.nbytes)*float64(step))
				}
			}
		}
	}
}

// TestTopNAll: topNAll's one pass over centroid-major scores gives each
// active point topN's list over its own row, ties by index. Seed 19.
func TestTopNAll(t *testing.T) {
	const seed = 19
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := 0; round < 100; round++ {
		k, nq, n := 1+rng.IntN(70), 1+rng.IntN(10), 1+rng.IntN(12)
		cs := make([]float32, k*nq)
		for i := range cs {
			cs[i] = float32(rng.IntN(9)) // ties
		}
		var active []int
		for i := 0; i < nq; i++ {
			if rng.IntN(4) > 0 {
				active = append(active, i)
			}
		}
		got, _ := topNAll(nil, nil, cs, k, nq, active, n)
		var want []int
		row := make([]float32, k)
		for _, i := range active {
			for c := range row {
				row[c] = cs[c*nq+i]
			}
			want = topN(want, row, n, len(want))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d (k %d nq %d n %d): %v, want %v", round, k, nq, n, got, want)
		}
	}
}
