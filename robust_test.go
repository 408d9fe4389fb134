package wpcdb_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestDropDuringSearch: searches racing a drop either return the answer
// of the whole collection or fail with ErrCollectionNotFound, never a
// partial top-k.
func TestDropDuringSearch(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	for round := range 3 {
		name := fmt.Sprintf("c%d", round)
		c, err := db.CreateCollection(ctx, name, wpcdb.CollectionConfig{Dim: 8})
		if err != nil {
			t.Fatal(err)
		}
		items := randomItems(uint64(round), 400, 6, 8, "i")
		if err := c.Upsert(ctx, items); err != nil {
			t.Fatal(err)
		}
		opts := wpcdb.SearchOptions{K: 20, Exact: true}
		want, err := c.Search(ctx, items[0].Cloud, opts)
		if err != nil || len(want.Hits) != 20 {
			t.Fatal(len(want.Hits), err)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 30; i++ {
					got, err := c.Search(ctx, items[0].Cloud, opts)
					if errors.Is(err, wpcdb.ErrCollectionNotFound) {
						return
					}
					if err != nil {
						t.Errorf("round %d goroutine %d: %v", round, g, err)
						return
					}
					if !reflect.DeepEqual(hitIDs(got.Hits), hitIDs(want.Hits)) {
						t.Errorf("round %d goroutine %d: a search racing the drop returned %d hits %v, want %v", round, g, len(got.Hits), hitIDs(got.Hits), hitIDs(want.Hits))
						return
					}
				}
			}()
		}
		if err := db.DropCollection(ctx, name); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if _, err := c.Search(ctx, items[0].Cloud, opts); !errors.Is(err, wpcdb.ErrCollectionNotFound) {
			t.Errorf("search after drop: %v", err)
		}
	}
}

func hitIDs(h []wpcdb.Hit) []string {
	out := make([]string, len(h))
	for i := range h {
		out[i] = h[i].ID
	}
	return out
}

// TestCorruptionNeverPanics flips bytes in every file of a small closed
// database, one copy per flip, and requires each reopened copy to either
// report an error or give the original answers: never a panic, never a
// silently different answer.
func TestCorruptionNeverPanics(t *testing.T) {
	src := filepath.Join(t.TempDir(), "db")
	db, err := wpcdb.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, MaxPoints: 6, Features: collconfig.Features{Dim: 32}})
	if err != nil {
		t.Fatal(err)
	}
	items := randomItems(7, 150, 6, 8, "i")
	if err := c.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	type answers struct {
		Count int
		Hits  [][]string
		Items []wpcdb.Item
	}
	read := func(db *wpcdb.DB) (a answers, err error) {
		c, err := db.Collection("c")
		if err != nil {
			return a, err
		}
		a.Count = c.Count()
		for _, q := range []int{0, 77} {
			for _, exact := range []bool{true, false} {
				res, err := c.Search(ctx, items[q].Cloud, wpcdb.SearchOptions{K: 10, Exact: exact})
				if err != nil {
					return a, err
				}
				a.Hits = append(a.Hits, hitIDs(res.Hits))
			}
		}
		for _, i := range []int{1, 50, 149} {
			it, err := c.Get(ctx, items[i].ID)
			if err != nil {
				return a, err
			}
			a.Items = append(a.Items, it)
		}
		return a, nil
	}
	want, err := read(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	cases, errorsSeen := 0, 0
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			continue
		}
		// The first and last bytes and a few between: headers, blocks,
		// footers and checksums.
		for _, pos := range []int{0, len(data) / 7, len(data) / 3, len(data) / 2, 2 * len(data) / 3, len(data) - 9, len(data) - 1} {
			if pos < 0 {
				continue
			}
			cases++
			dst := filepath.Join(t.TempDir(), "db")
			copyDir(t, src, dst)
			bad := append([]byte(nil), data...)
			bad[pos] ^= 0x5a
			if err := os.WriteFile(filepath.Join(dst, e.Name()), bad, 0o644); err != nil {
				t.Fatal(err)
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("%s byte %d: panic: %v", e.Name(), pos, p)
					}
				}()
				db, err := wpcdb.Open(dst, nil)
				if err != nil {
					errorsSeen++
					return
				}
				defer db.Close()
				got, err := read(db)
				if err != nil {
					errorsSeen++
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s byte %d: silently different answers: count %d (want %d), hits %v (want %v)", e.Name(), pos, got.Count, want.Count, got.Hits, want.Hits)
				}
			}()
		}
	}
	t.Logf("%d corrupted copies, %d reported an error, the rest answered identically", cases, errorsSeen)
	if errorsSeen == 0 {
		t.Error("no flip was detected: the test flips nothing that matters")
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKernelLimitsFinite: at the edges of the kernel limits (α, σ and c
// at their minimum and maximum), every score mode's indexed search gives
// finite scores, those of the exact scan's top 5 (the float32 first stage
// only prunes); 1e-300*linear, below MinKernelAlpha, used to give NaN through
// the index under cosine (and failed --json) and 0 scores under inner.
func TestKernelLimitsFinite(t *testing.T) {
	const seed = 1414
	t.Logf("seed %d", seed)
	items := randomItems(seed, 400, 4, 6, "i") // above the exact-scan threshold (256)
	for _, spec := range []string{"1e-6*linear", "1e-6*gaussian(0.001)", "1e-6*imq(0.001)+1e6*linear", "1e6*linear+1e-6*gaussian(1e6)+1e-6*imq(1e6)"} {
		for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
			k, err := wpcsim.ParseKernel(spec)
			if err != nil {
				t.Fatal(err)
			}
			db := openMem(t, vfs.NewMem())
			c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 6, Similarity: wpcsim.Config{Kernel: k, Score: mode}, Index: collconfig.Index{Kind: collconfig.IndexFlat}})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Upsert(ctx, items); err != nil {
				t.Fatal(err)
			}
			for _, q := range []int{0, 33} {
				exact, err := c.Search(ctx, items[q].Cloud, wpcdb.SearchOptions{K: 5, Exact: true})
				if err != nil {
					t.Fatal(err)
				}
				res, err := c.Search(ctx, items[q].Cloud, wpcdb.SearchOptions{K: 5, Candidates: 40})
				if err != nil || res.Stats.Plan != "index" {
					t.Fatalf("%s %s: plan %q, %v; want the index", spec, mode, res.Stats.Plan, err)
				}
				// Scores, not IDs: σ = 0.001 scores every other item 0,
				// a tie the two plans may break differently. A linear
				// kernel's scores come from φ in float32 (no rerank), and
				// an MMD distance is a square root of a difference, so
				// they are compared to a thousandth of the top 5's scale.
				scale := 0.0
				for _, h := range exact.Hits {
					scale = max(scale, math.Abs(h.Score))
				}
				for i, h := range res.Hits {
					if math.IsNaN(h.Score) || math.IsInf(h.Score, 0) || len(res.Hits) != len(exact.Hits) || math.Abs(h.Score-exact.Hits[i].Score) > 1e-3*scale {
						t.Errorf("%s %s query %d: indexed hits %+v, exact %+v", spec, mode, q, res.Hits, exact.Hits)
						break
					}
				}
			}
			db.Close()
		}
	}
}
