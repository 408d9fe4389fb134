package index

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/datadriven"
)

// TestDatadriven runs the scripts in testdata/ (one per feature; rewrite
// the expected output with -rewrite). Commands:
//
//	new index=flat|hnsw dim=3 metric=ip|cosine|l2 [m=16] [efc=200] [ef=64] [seed=0]
//	add [id=7 vec=1,0,2]       one vector, or one "id: v1,v2,…" per input line
//	add-random n=200 [start=0] [seed=0] [clusters=8]
//	delete id=7 | id=(1,2,3)
//	delete-range lo=0 hi=50    IDs lo ≤ id < hi
//	search k=3 [ef=..] [filter=1,4,9] q=1,0,2
//	len | contains id=7 | stats (hnsw: live, tombstones, free slots)
//	save | load | corrupt offset=20 | truncate n=10
//	fingerprint as=a | compare=a  record or compare a hash of the HNSW graph
//	check-recall k=10 [queries=50] [seed=0] [ef=..] [filter-mod=10]
//
// The script keeps its own copy of every vector the index should hold, and
// every search is checked against a float64 brute force over it: sorted,
// no deleted or filtered-out ID, min(k, #passing) results, each score
// right. Flat must also return the exact top k (up to near-ties); HNSW,
// being approximate, prints a note when it misses part of it.
func TestDatadriven(t *testing.T) {
	paths, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			continue // testdata/fuzz and the like
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			s := &indexScript{}
			datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
				return s.run(t, td)
			})
		})
	}
}

// indexScript is the state of one script: the index under test and the
// vectors it should hold.
type indexScript struct {
	kind   string // "flat" or "hnsw"
	dim    int
	metric Metric
	idx    Index
	vecs   map[uint32][]float32
	saved  scriptPersister
	// savedVecs is vecs when saved, restored by load.
	savedVecs    map[uint32][]float32
	fingerprints map[string]uint64
}

// scriptPersister keeps blobs in memory.
type scriptPersister map[string][]byte

func (p scriptPersister) PutBlob(name string, b []byte) error {
	p[name] = append([]byte(nil), b...)
	return nil
}

func (p scriptPersister) GetBlob(name string) ([]byte, error) { return p[name], nil }

func (s *indexScript) run(t *testing.T, td *datadriven.TestData) string {
	if td.Cmd != "new" && s.idx == nil {
		td.Fatalf(t, "%s before new", td.Cmd)
	}
	switch td.Cmd {
	case "new":
		return s.cmdNew(t, td)
	case "add":
		if td.HasArg("id") {
			var id uint32
			td.ScanArgs(t, "id", &id)
			return s.add(id, parseVec(t, td, argString(t, td, "vec")))
		}
		var out strings.Builder
		for _, line := range strings.Split(td.Input, "\n") {
			idText, vec, ok := strings.Cut(line, ":")
			id, err := strconv.ParseUint(strings.TrimSpace(idText), 10, 32)
			if !ok || err != nil {
				td.Fatalf(t, "want \"id: v1,v2,…\", got %q", line)
			}
			if msg := s.add(uint32(id), parseVec(t, td, strings.TrimSpace(vec))); msg != "" {
				fmt.Fprintf(&out, "%d: %s", id, msg)
			}
		}
		return out.String()
	case "add-random":
		return s.addRandom(t, td)
	case "delete":
		arg, ok := td.Arg("id")
		if !ok {
			td.Fatalf(t, "delete needs id")
		}
		for i := range arg.Vals {
			var id uint32
			arg.Scan(t, i, &id)
			s.idx.Delete(id)
			delete(s.vecs, id)
		}
		return ""
	case "delete-range":
		var lo, hi uint32
		td.ScanArgs(t, "lo", &lo)
		td.ScanArgs(t, "hi", &hi)
		for id := lo; id < hi; id++ {
			s.idx.Delete(id)
			delete(s.vecs, id)
		}
		return ""
	case "search":
		return s.search(t, td)
	case "len":
		if s.idx.Len() != len(s.vecs) {
			t.Errorf("%s: Len %d, the script holds %d vectors", td.Pos, s.idx.Len(), len(s.vecs))
		}
		return fmt.Sprintf("%d\n", s.idx.Len())
	case "contains":
		var id uint32
		td.ScanArgs(t, "id", &id)
		got := s.idx.Contains(id)
		if _, want := s.vecs[id]; got != want {
			t.Errorf("%s: Contains(%d) = %t, want %t", td.Pos, id, got, want)
		}
		return fmt.Sprintf("%t\n", got)
	case "stats":
		h, ok := s.idx.(*HNSW)
		if !ok {
			td.Fatalf(t, "stats is for hnsw")
		}
		h.mu.RLock()
		defer h.mu.RUnlock()
		return fmt.Sprintf("live=%d tombstones=%d free=%d slots=%d\n", len(h.slot), h.deleted, len(h.free), len(h.ids))
	case "fingerprint":
		// The hash itself is not printed: it depends on the SIMD path's
		// rounding, which CI varies. Scripts compare graphs instead.
		h, ok := s.idx.(*HNSW)
		if !ok {
			td.Fatalf(t, "fingerprint is for hnsw")
		}
		fp := h.fingerprint()
		if arg, ok := td.Arg("as"); ok {
			if s.fingerprints == nil {
				s.fingerprints = map[string]uint64{}
			}
			s.fingerprints[arg.SingleVal(t)] = fp
			return ""
		}
		name := argString(t, td, "compare")
		want, ok := s.fingerprints[name]
		if !ok {
			td.Fatalf(t, "no fingerprint %q", name)
		}
		if fp == want {
			return "same graph as " + name + "\n"
		}
		return "not the graph " + name + "\n"
	case "save":
		s.saved = scriptPersister{}
		s.savedVecs = maps.Clone(s.vecs)
		if err := s.idx.Save(s.saved); err != nil {
			return "error: " + err.Error() + "\n"
		}
		// Sizes only of flat blobs: an HNSW blob's depends on the links,
		// so on the SIMD path's rounding.
		var out strings.Builder
		for _, name := range sortedKeys(s.saved) {
			if s.kind == "flat" {
				fmt.Fprintf(&out, "%s: %d bytes\n", name, len(s.saved[name]))
			} else {
				fmt.Fprintf(&out, "%s\n", name)
			}
		}
		return out.String()
	case "corrupt", "truncate":
		return s.damage(t, td)
	case "load":
		return s.load()
	case "check-recall":
		return s.checkRecall(t, td)
	}
	td.Fatalf(t, "unknown command %s", td.Cmd)
	return ""
}

func (s *indexScript) cmdNew(t *testing.T, td *datadriven.TestData) string {
	var metric string
	td.ScanArgs(t, "index", &s.kind)
	td.ScanArgs(t, "dim", &s.dim)
	td.ScanArgs(t, "metric", &metric)
	s.metric = parseMetric(t, td, metric)
	s.vecs = map[uint32][]float32{}
	s.saved = nil
	switch s.kind {
	case "flat":
		s.idx = NewFlat(s.dim, s.metric)
		return fmt.Sprintf("flat dim=%d metric=%s\n", s.dim, s.metric)
	case "hnsw":
		var o HNSWOptions
		td.MaybeScanArgs(t, "m", &o.M)
		td.MaybeScanArgs(t, "efc", &o.EfConstruction)
		td.MaybeScanArgs(t, "ef", &o.EfSearch)
		td.MaybeScanArgs(t, "seed", &o.Seed)
		h, err := NewHNSW(s.dim, s.metric, o)
		if err != nil {
			s.idx = nil
			return "error: " + err.Error() + "\n"
		}
		s.idx = h
		o = h.Options()
		return fmt.Sprintf("hnsw dim=%d metric=%s m=%d efc=%d ef=%d seed=%d\n", s.dim, s.metric, o.M, o.EfConstruction, o.EfSearch, o.Seed)
	}
	td.Fatalf(t, "unknown index %q", s.kind)
	return ""
}

// add adds one vector to the index and, if the index takes it, to the
// script's copy; it returns an error line or "".
func (s *indexScript) add(id uint32, v []float32) string {
	if err := s.idx.Add(id, v); err != nil {
		return "error: " + err.Error() + "\n"
	}
	s.vecs[id] = v
	return ""
}

// addRandom adds n clustered vectors with IDs start, start+1, …: cluster
// centres uniform in [-1, 1]^dim, points at a spread of 0.3 around them.
func (s *indexScript) addRandom(t *testing.T, td *datadriven.TestData) string {
	var n, start, clusters int
	var seed uint64
	clusters = 8
	td.ScanArgs(t, "n", &n)
	td.MaybeScanArgs(t, "start", &start)
	td.MaybeScanArgs(t, "seed", &seed)
	td.MaybeScanArgs(t, "clusters", &clusters)
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = uniformVec(rng, s.dim)
	}
	for i := range n {
		c := centres[rng.IntN(clusters)]
		v := uniformVec(rng, s.dim)
		for j := range v {
			v[j] = c[j] + 0.3*v[j]
		}
		if msg := s.add(uint32(start+i), v); msg != "" {
			return msg
		}
	}
	return fmt.Sprintf("len=%d\n", s.idx.Len())
}

func uniformVec(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for j := range v {
		v[j] = float32(2*rng.Float64() - 1)
	}
	return v
}

func (s *indexScript) search(t *testing.T, td *datadriven.TestData) string {
	var k int
	var p Params
	td.ScanArgs(t, "k", &k)
	td.MaybeScanArgs(t, "ef", &p.Ef)
	q := parseVec(t, td, argString(t, td, "q"))
	var filter *roaring.Bitmap
	if arg, ok := td.Arg("filter"); ok {
		filter = roaring.New()
		for _, f := range strings.Split(arg.SingleVal(t), ",") {
			if f == "" {
				continue // filter= passes nothing
			}
			id, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				td.Fatalf(t, "filter: %v", err)
			}
			filter.Add(uint32(id))
		}
	}
	res, err := s.idx.Search(q, k, filter, p)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var out strings.Builder
	for _, r := range res {
		fmt.Fprintf(&out, "%d: %s\n", r.ID, fmtScore(r.Score))
	}
	if len(res) == 0 {
		out.WriteString("no results\n")
	}
	missed := s.verify(t, td.Pos, q, k, filter, res)
	if missed > 0 {
		if s.kind == "flat" {
			t.Errorf("%s: flat missed %d of the exact top %d", td.Pos, missed, k)
		}
		exact := s.bruteForce(q, filter)
		fmt.Fprintf(&out, "approximate: missed %d of the exact top %d:", missed, k)
		for _, r := range exact[:min(k, len(exact))] {
			fmt.Fprintf(&out, " %d", r.id)
		}
		out.WriteString("\n")
	}
	return out.String()
}

// scored is an ID with its float64 brute-force score.
type scored struct {
	id    uint32
	score float64
}

// bruteForce scores every vector passing filter in float64, best first
// (ties by ID).
func (s *indexScript) bruteForce(q []float32, filter *roaring.Bitmap) []scored {
	var out []scored
	for id, v := range s.vecs {
		if filter == nil || filter.Contains(id) {
			out = append(out, scored{id, s.exactScore(q, v)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].score != out[j].score {
			return out[i].score > out[j].score
		}
		return out[i].id < out[j].id
	})
	return out
}

func (s *indexScript) exactScore(q, v []float32) float64 {
	var d, qn, vn, l2 float64
	for i := range v {
		a, b := float64(q[i]), float64(v[i])
		d += a * b
		qn += a * a
		vn += b * b
		l2 += (a - b) * (a - b)
	}
	switch s.metric {
	case Cosine:
		if qn == 0 || vn == 0 {
			return 0
		}
		return d / math.Sqrt(qn*vn)
	case L2:
		return -l2
	}
	return d
}

// scoreTolerance is how far a float32 score may be from the float64 one.
func scoreTolerance(x float64) float64 { return 1e-4 * max(1, math.Abs(x)) }

// verify checks a search's results against the brute force and returns
// how many of the exact top k it missed (an ID counts as found when its
// score ties the k-th best within the tolerance).
func (s *indexScript) verify(t *testing.T, pos string, q []float32, k int, filter *roaring.Bitmap, res []Result) int {
	t.Helper()
	exact := s.bruteForce(q, filter)
	byID := map[uint32]float64{}
	for _, e := range exact {
		byID[e.id] = e.score
	}
	if want := min(k, len(exact)); len(res) != want {
		t.Errorf("%s: %d results, want min(k, #passing) = %d", pos, len(res), want)
	}
	seen := map[uint32]bool{}
	for i, r := range res {
		want, ok := byID[r.ID]
		switch {
		case !ok:
			t.Errorf("%s: result %d is not a live vector passing the filter", pos, r.ID)
		case math.Abs(float64(r.Score)-want) > scoreTolerance(want):
			t.Errorf("%s: result %d scored %g, want %g", pos, r.ID, r.Score, want)
		}
		if seen[r.ID] {
			t.Errorf("%s: result %d twice", pos, r.ID)
		}
		seen[r.ID] = true
		if i > 0 && better(r, res[i-1]) {
			t.Errorf("%s: results out of order at %d", pos, i)
		}
	}
	top := exact[:min(max(k, 0), len(exact))]
	if len(res) == 0 {
		return len(top)
	}
	// An exact top-k ID that is not returned is missed only if a returned
	// one scores clearly below it: near-ties may be swapped.
	worst := math.Inf(1)
	for _, r := range res {
		worst = min(worst, byID[r.ID])
	}
	missed := 0
	for _, e := range top {
		if !seen[e.id] && e.score > worst+scoreTolerance(worst) {
			missed++
		}
	}
	return missed
}

func (s *indexScript) damage(t *testing.T, td *datadriven.TestData) string {
	if len(s.saved) != 1 {
		td.Fatalf(t, "%s needs exactly one saved blob, have %d", td.Cmd, len(s.saved))
	}
	name := sortedKeys(s.saved)[0]
	b := s.saved[name]
	if td.Cmd == "corrupt" {
		var off int
		td.ScanArgs(t, "offset", &off)
		at := off
		if at < 0 { // from the end
			at += len(b)
		}
		b[at] ^= 0xff
		return fmt.Sprintf("%s: flipped byte %d\n", name, off)
	}
	var n int
	td.ScanArgs(t, "n", &n)
	s.saved[name] = b[:len(b)-n]
	return fmt.Sprintf("%s: truncated by %d\n", name, n)
}

var checksums = regexp.MustCompile(`checksum [0-9a-f]{8}, want [0-9a-f]{8}`)

// load replaces the index by the one loaded from the saved blobs.
func (s *indexScript) load() string {
	var (
		idx Index
		err error
	)
	switch s.kind {
	case "flat":
		var f *Flat
		if f, err = LoadFlat(s.saved); f != nil {
			idx = f
		}
	case "hnsw":
		var h *HNSW
		if h, err = LoadHNSW(s.saved); h != nil {
			idx = h
		}
	}
	switch {
	case err != nil:
		// Checksums depend on the graph, so on the SIMD path: masked.
		msg := checksums.ReplaceAllString(err.Error(), "checksum ········, want ········")
		return fmt.Sprintf("error (corrupt: %t): %s\n", errors.Is(err, ErrCorrupt), msg)
	case idx == nil:
		return "nothing saved\n"
	}
	s.idx = idx
	s.vecs = maps.Clone(s.savedVecs)
	return fmt.Sprintf("loaded %s: len=%d dim=%d\n", s.kind, idx.Len(), idx.Dim())
}

// checkRecall compares the index with a Flat over the same vectors on
// uniform random queries and prints the mean recall@k, rounded to 2
// decimals so that a regression shows as a diff.
func (s *indexScript) checkRecall(t *testing.T, td *datadriven.TestData) string {
	var k, queries, mod int
	var seed uint64
	var p Params
	queries = 50
	td.ScanArgs(t, "k", &k)
	td.MaybeScanArgs(t, "queries", &queries)
	td.MaybeScanArgs(t, "seed", &seed)
	td.MaybeScanArgs(t, "ef", &p.Ef)
	td.MaybeScanArgs(t, "filter-mod", &mod)
	oracle := NewFlat(s.dim, s.metric)
	for id, v := range s.vecs {
		oracle.Add(id, v)
	}
	var filter *roaring.Bitmap
	passing := len(s.vecs)
	if mod > 0 {
		filter = roaring.New()
		passing = 0
		for id := range s.vecs {
			if id%uint32(mod) == 0 {
				filter.Add(id)
				passing++
			}
		}
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	var sum float64
	for range queries {
		q := uniformVec(rng, s.dim)
		got, err := s.idx.Search(q, k, filter, p)
		if err != nil {
			t.Fatalf("%s: %v", td.Pos, err)
		}
		want, _ := oracle.Search(q, k, filter, p)
		s.verify(t, td.Pos, q, k, filter, got)
		sum += recallAt(got, want)
	}
	out := fmt.Sprintf("recall@%d = %.2f over %d queries", k, sum/float64(queries), queries)
	if filter != nil {
		out += fmt.Sprintf(", filter passing %d of %d", passing, len(s.vecs))
		if h, ok := s.idx.(*HNSW); ok {
			ef := h.opts.EfSearch
			if p.Ef > 0 {
				ef = p.Ef
			}
			path := "filtered walk"
			if filterScanIsCheaper(uint64(passing), max(ef, k), len(s.vecs)) {
				path = "exact scan"
			}
			out += " (" + path + ")"
		}
	}
	return out + "\n"
}

func parseMetric(t *testing.T, td *datadriven.TestData, s string) Metric {
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		if m.String() == s {
			return m
		}
	}
	td.Fatalf(t, "unknown metric %q", s)
	return 0
}

func parseVec(t *testing.T, td *datadriven.TestData, s string) []float32 {
	var v []float32
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
		if err != nil {
			td.Fatalf(t, "vector %q: %v", s, err)
		}
		v = append(v, float32(x))
	}
	return v
}

func argString(t *testing.T, td *datadriven.TestData, key string) string {
	arg, ok := td.Arg(key)
	if !ok {
		td.Fatalf(t, "missing %s=", key)
	}
	return arg.SingleVal(t)
}

// fmtScore rounds a score to 4 decimals and prints it without trailing
// zeros (and without a minus sign on zero).
func fmtScore(x float32) string {
	r := math.Round(float64(x)*1e4) / 1e4
	if r == 0 {
		r = 0
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// fingerprint hashes the graph: the slots (state, ID, level, vector,
// links), the entry and the level generator, so that two graphs that will
// answer and grow alike have the same fingerprint.
func (h *HNSW) fingerprint() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	f := fnv.New64a()
	w := func(xs ...uint32) {
		for _, x := range xs {
			f.Write([]byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)})
		}
	}
	w(uint32(h.entry), uint32(h.maxLevel), uint32(len(h.ids)))
	for s, st := range h.states {
		w(uint32(st))
		if st == slotFree {
			continue
		}
		w(h.ids[s], uint32(h.levels[s]))
		for _, x := range h.vecs[s*h.dim : (s+1)*h.dim] {
			w(math.Float32bits(x))
		}
		for l := 0; l <= int(h.levels[s]); l++ {
			ns := h.neighbours(uint32(s), l)
			w(uint32(len(ns)))
			w(ns...)
		}
	}
	state, _ := h.pcg.MarshalBinary()
	f.Write(state)
	return f.Sum64()
}
