package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// smallCollection ingests n compact items and returns the open collection
// and q queries.
func smallCollection(t *testing.T, n, q int) (*wpcdb.Collection, []wpcsim.Cloud) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	synth := NewSynth(CompactShape, 5)
	if _, err := Ingest(context.Background(), IngestConfig{Dir: dir, Synth: synth, N: n, Collection: wpcdb.CollectionConfig{Dim: 64}}); err != nil {
		t.Fatal(err)
	}
	db, err := wpcdb.Open(dir, &wpcdb.Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := db.Collection("bench")
	if err != nil {
		t.Fatal(err)
	}
	queries := make([]wpcsim.Cloud, q)
	for j := range queries {
		queries[j] = synth.Query(j, 8)
	}
	return c, queries
}

func TestTruthCache(t *testing.T) {
	ctx := context.Background()
	c, queries := smallCollection(t, 300, 7)
	var log bytes.Buffer
	cache := TruthCache{Dir: filepath.Join(t.TempDir(), "truth"), Log: &log}
	key := NewTruthKey("compact", "n=300 seed=5", c.Config().Similarity, 10, len(queries))

	// Miss: computed in parallel, equal to one query at a time, stored.
	truth, info, err := Truth(ctx, TruthConfig{Collection: c, Queries: queries, K: 10, Key: key, Cache: cache, Threads: 4})
	if err != nil {
		t.Fatal(err)
	}
	serial, err := GroundTruth(ctx, c, queries, 10, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cached || info.Threads != 4 || info.File != cache.Path(key) || !reflect.DeepEqual(truth, serial) || len(truth) != 7 || len(truth[0]) != 10 {
		t.Fatalf("miss: info %+v, truth %v, serial %v", info, truth, serial)
	}
	if _, err := os.Stat(info.File); err != nil {
		t.Fatal(err)
	}

	// Hit: the collection is not touched (nil would panic).
	hit, info, err := Truth(ctx, TruthConfig{Collection: nil, Queries: queries, K: 10, Key: key, Cache: cache})
	if err != nil || !info.Cached || !reflect.DeepEqual(hit, truth) {
		t.Fatalf("hit: %v %+v %v", err, info, hit)
	}

	// A changed key (k, kernel, data) misses and gets its own file.
	for _, other := range []TruthKey{
		NewTruthKey("compact", "n=300 seed=5", c.Config().Similarity, 5, len(queries)),
		NewTruthKey("compact", "n=300 seed=6", c.Config().Similarity, 10, len(queries)),
		NewTruthKey("compact", "n=300 seed=5", wpcsim.Config{Kernel: wpcsim.DefaultKernel(), Score: wpcsim.ScoreCosine}, 10, len(queries)),
	} {
		if other.Hash() == key.Hash() {
			t.Fatalf("keys %+v and %+v hash alike", other, key)
		}
		if _, ok := cache.Load(other); ok {
			t.Fatalf("changed key %+v hit the cache", other)
		}
	}
	k5 := NewTruthKey("compact", "n=300 seed=5", c.Config().Similarity, 5, len(queries))
	top5, info, err := Truth(ctx, TruthConfig{Collection: c, Queries: queries, K: 5, Key: k5, Cache: cache})
	if err != nil || info.Cached || info.File == cache.Path(key) || len(top5[0]) != 5 || !reflect.DeepEqual(top5[3], truth[3][:5]) {
		t.Fatalf("k=5: %v %+v %v", err, info, top5)
	}
	if log.Len() != 0 {
		t.Fatalf("warnings without a bad file: %s", log.String())
	}

	// A corrupt file is ignored with a warning, recomputed and rewritten.
	if err := os.WriteFile(cache.Path(key), []byte(`{"format": 1, "key": {"workl`), 0o644); err != nil {
		t.Fatal(err)
	}
	again, info, err := Truth(ctx, TruthConfig{Collection: c, Queries: queries, K: 10, Key: key, Cache: cache})
	if err != nil || info.Cached || !reflect.DeepEqual(again, truth) {
		t.Fatalf("after corruption: %v %+v", err, info)
	}
	if !strings.Contains(log.String(), "ignoring ground-truth cache file "+cache.Path(key)) {
		t.Fatalf("no warning about the corrupt file: %q", log.String())
	}
	if got, ok := cache.Load(key); !ok || !reflect.DeepEqual(got, truth) {
		t.Fatal("the corrupt file was not rewritten")
	}

	// A file holding another key's truth under this key's name is ignored.
	log.Reset()
	data, _ := os.ReadFile(cache.Path(k5))
	os.WriteFile(cache.Path(key), data, 0o644)
	if _, ok := cache.Load(key); ok || !strings.Contains(log.String(), "another key") {
		t.Fatalf("mismatched file accepted (log %q)", log.String())
	}
	// So is one whose rows do not fit the key.
	log.Reset()
	bad := truthFile{Format: truthFormat, Key: key, Truth: truth[:3]}
	if err := cache.Store(key, bad.Truth); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.Load(key); ok || !strings.Contains(log.String(), "3 queries, want 7") {
		t.Fatalf("short file accepted (log %q)", log.String())
	}

	// Writes are atomic: nothing but the cache files is left in the dir.
	entries, _ := os.ReadDir(cache.Dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.Count(e.Name(), ".") != 1 {
			t.Errorf("stray file %s", e.Name())
		}
	}

	// No cache: computed, nothing written.
	_, info, err = Truth(ctx, TruthConfig{Collection: c, Queries: queries, K: 10, Key: key})
	if err != nil || info.Cached || info.File != "" {
		t.Fatalf("no cache: %v %+v", err, info)
	}
}

func TestSearchWithGivenTruth(t *testing.T) {
	ctx := context.Background()
	c, queries := smallCollection(t, 200, 8)
	truth, err := GroundTruth(ctx, c, queries, 10, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	runs, got, err := Search(ctx, SearchConfig{Collection: c, Clouds: queries, Truth: truth, K: 10, Candidates: []int{200}})
	if err != nil {
		t.Fatal(err)
	}
	exact := runs[0]
	if exact.Method != "exact" || exact.Queries != 5 || exact.Params["timed_queries"] != 5 || exact.Recall != 1 || exact.Threads != 1 || exact.QPS <= 0 {
		t.Fatalf("exact run %+v", exact)
	}
	// Depth 200 reranks every item: the exact answer.
	if len(runs) != 2 || runs[1].Recall != 1 || runs[1].Queries != 8 || !reflect.DeepEqual(got, truth) {
		t.Fatalf("runs %+v", runs)
	}
	// A wrong truth shows in the exact run's recall.
	wrong := append([][]string(nil), truth...)
	wrong[0] = []string{"no-such-item"}
	runs, _, err = Search(ctx, SearchConfig{Collection: c, Clouds: queries, Truth: wrong, K: 10, Candidates: []int{200}, ExactTimed: 2})
	if err != nil || runs[0].Queries != 2 || runs[0].Recall >= 1 {
		t.Fatalf("wrong truth: %v %+v", err, runs[0])
	}
}
