package query

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func openTestStore(t *testing.T) *storage.Store {
	t.Helper()
	st, err := storage.Open("db", &storage.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// writeItems stores items with IDs i0, i1, … and returns their internal IDs.
func writeItems(t *testing.T, coll *storage.Coll, items []map[string]any) []uint32 {
	t.Helper()
	ws := make([]storage.ItemWrite, len(items))
	for i, attrs := range items {
		cloud := wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}
		ws[i] = storage.ItemWrite{ID: fmt.Sprint("i", i), Cloud: cloud, Attrs: attrs}
	}
	iids, err := coll.Write(ws)
	if err != nil {
		t.Fatal(err)
	}
	return iids
}

// TestCompileStorage runs filters end to end against a storage.Coll.
func TestCompileStorage(t *testing.T) {
	st := openTestStore(t)
	coll, err := st.CreateCollection("c", collconfig.Config{Dim: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"shirt", "hat", "shoe", "sock", "scarf", "gloves", "gone"}
	iids := writeItems(t, coll, []map[string]any{
		{"color": "red", "year": 2021.0, "sale": true},
		{"color": "blue", "year": 2019.0},
		{"color": "red", "year": math.Copysign(0, -1), "sale": false},
		{"color": 7.0, "year": "2020"},
		{"year": 2023.5, "sale": true, "size (cm)": 40.0},
		{"color": "green", "year": 0.0},
		{"color": "red", "year": 2022.0},
	})
	if _, err := coll.Delete([]string{"i6"}); err != nil { // gone
		t.Fatal(err)
	}
	iid := map[string]uint32{}
	for i, name := range names {
		iid[name] = iids[i]
	}
	type filterCase struct {
		filter string
		want   []string
	}
	check := func(t *testing.T, cases []filterCase) {
		for _, tc := range cases {
			e, err := Parse(tc.filter)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.filter, err)
			}
			want := roaring.New()
			for _, name := range tc.want {
				want.Add(iid[name])
			}
			if got := Compile(e, coll); !got.Equals(want) {
				t.Errorf("%s: got internal IDs %v, want %v %v", tc.filter, got.ToArray(), want.ToArray(), tc.want)
			}
		}
	}
	check(t, []filterCase{
		{`color = "red"`, []string{"shirt", "shoe"}},
		{`color != "red"`, []string{"hat", "sock", "gloves"}},
		{`NOT color = "red"`, []string{"hat", "sock", "scarf", "gloves"}},
		{`color IN ("red", 7)`, []string{"shirt", "shoe", "sock"}},
		{`color NOT IN ("red", 7)`, []string{"hat", "gloves"}},
		{`year >= 2020 AND NOT year >= 2024`, []string{"shirt", "scarf"}},
		{`year = "2020"`, []string{"sock"}},
		{`year = 0`, []string{"shoe", "gloves"}},
		{`year = -0 AND year >= -0`, []string{"shoe", "gloves"}},
		{`sale = true OR "size (cm)" > 30`, []string{"shirt", "scarf"}},
		{`NOT (sale = true OR color = "blue")`, []string{"shoe", "sock", "gloves"}},
		{`sale != true`, []string{"shoe"}},
		{`nothing = 1 OR NOT nothing = 1`, []string{"shirt", "hat", "shoe", "sock", "scarf", "gloves"}},
	})
	t.Run("less", func(t *testing.T) {
		check(t, []filterCase{
			{`year >= 2020 AND year < 2024`, []string{"shirt", "scarf"}},
			{`year <= 0`, []string{"shoe", "gloves"}},
			{`year < 0`, nil},
			{`year > -1`, []string{"shirt", "hat", "shoe", "scarf", "gloves"}},
		})
	})
}

// TestCompileStorageRandom compares random filters over random items in a
// storage.Coll with the oracle.
func TestCompileStorageRandom(t *testing.T) {
	run := func(t *testing.T, nonNegative bool) {
		for _, seed := range seeds() {
			t.Logf("seed %d (rerun with -seed %d)", seed, seed)
			g := gen{r: rand.New(rand.NewPCG(seed, seed)), nonNegative: nonNegative}
			fs := vfs.NewMem()
			st, err := storage.Open("db", &storage.Options{FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			coll, err := st.CreateCollection("c", collconfig.Config{Dim: 2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			items := make([]map[string]any, 200)
			for i := range items {
				items[i] = g.item()
			}
			iids := writeItems(t, coll, items)
			dead := make([]bool, len(items))
			var del []string
			for i := range items {
				if g.r.IntN(10) == 0 {
					dead[i] = true
					del = append(del, fmt.Sprint("i", i))
				}
			}
			if _, err := coll.Delete(del); err != nil {
				t.Fatal(err)
			}
			checkFilters(t, g, 300, coll, items, iids, dead)

			// Rewrites (a third of the items change, the rest are written
			// unchanged) and attribute updates move postings between values,
			// lists and null; reopened, the bitmaps come from the postings.
			for i := range items {
				if !dead[i] && g.r.IntN(3) == 0 {
					items[i] = g.item()
				}
			}
			var live []map[string]any
			var liveIdx []int
			for i := range items {
				if !dead[i] {
					live, liveIdx = append(live, items[i]), append(liveIdx, i)
				}
			}
			ws := make([]storage.ItemWrite, len(live))
			for j, attrs := range live {
				ws[j] = storage.ItemWrite{ID: fmt.Sprint("i", liveIdx[j]), Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}, Attrs: attrs}
			}
			if _, err := coll.Write(ws); err != nil {
				t.Fatal(err)
			}
			for _, i := range liveIdx {
				if g.r.IntN(4) != 0 {
					continue
				}
				name, other := genNames[g.r.IntN(len(genNames))], genNames[g.r.IntN(len(genNames))]
				set := map[string]any{name: g.item()[genNames[g.r.IntN(len(genNames))]]}
				var unset []string
				if other != name {
					unset = []string{other}
				}
				next, err := coll.UpdateAttrs(fmt.Sprint("i", i), set, unset)
				if err != nil {
					t.Fatal(err)
				}
				items[i] = next
			}
			checkFilters(t, g, 150, coll, items, iids, dead)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if st, err = storage.Open("db", &storage.Options{FS: fs}); err != nil {
				t.Fatal(err)
			}
			if coll, err = st.Collection("c"); err != nil {
				t.Fatal(err)
			}
			checkFilters(t, g, 150, coll, items, iids, dead)
			st.Close()
		}
	}
	t.Run("nonnegative", func(t *testing.T) { run(t, true) })
	t.Run("all", func(t *testing.T) {
		run(t, false)
	})
}
