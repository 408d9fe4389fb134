package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TruthKey names everything a ground truth (the exact top-k of each query)
// depends on. Two runs with equal keys have the same truth, so it is
// computed once and cached on disk under the key's hash.
type TruthKey struct {
	// Workload is the workload's name (paper, compact, fmnist, file).
	Workload string `json:"workload"`
	// Data identifies the items and queries: for generated workloads n,
	// seed, shape and point encoding; for files their SHA-256; for
	// Fashion-MNIST the representation, n and the point encoding.
	Data      string `json:"data"`
	Kernel    string `json:"kernel"` // canonical spec (wpcsim.Kernel.String)
	Norm      string `json:"norm"`
	RawPoints bool   `json:"raw_points"`
	Score     string `json:"score"`
	K         int    `json:"k"`
	Queries   int    `json:"queries"`
}

// NewTruthKey fills a key's similarity fields from sim (defaults applied).
func NewTruthKey(workload, data string, sim wpcsim.Config, k, queries int) TruthKey {
	sim = sim.WithDefaults()
	return TruthKey{Workload: workload, Data: data, Kernel: sim.Kernel.String(), Norm: sim.Norm.String(),
		RawPoints: sim.RawPoints, Score: sim.Score.String(), K: k, Queries: queries}
}

// truthFormat is the version of the cache file layout; a file of another
// version is ignored and rewritten.
const truthFormat = 1

// Hash is the hex SHA-256 of the key (and the cache format), the cache
// file's name.
func (k TruthKey) Hash() string {
	js, _ := json.Marshal(k) // a struct of strings, ints and a bool: never fails
	h := sha256.Sum256(fmt.Appendf(nil, "wpcdb truth v%d\n%s", truthFormat, js))
	return hex.EncodeToString(h[:])
}

// truthFile is the content of a cache file.
type truthFile struct {
	Format int        `json:"format"`
	Key    TruthKey   `json:"key"`
	Truth  [][]string `json:"truth"` // per query, the exact top-k IDs, best first
}

// TruthCache is a directory of ground truths, one JSON file per key. The
// zero value (Dir "") caches nothing. Safe for concurrent use by separate
// processes: files are replaced atomically.
type TruthCache struct {
	Dir string
	// Log receives a line for a file that is corrupt or does not match its
	// key (nil: none).
	Log io.Writer
}

// Path is the cache file of key.
func (c TruthCache) Path(key TruthKey) string {
	return filepath.Join(c.Dir, key.Hash()+".json")
}

// Load returns the cached truth of key, or ok false when there is none or
// the file is unusable (corrupt, another format, another key, rows that do
// not fit the key): such a file is reported on Log and left to be
// overwritten by Store.
func (c TruthCache) Load(key TruthKey) (truth [][]string, ok bool) {
	if c.Dir == "" {
		return nil, false
	}
	path := c.Path(key)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false
	}
	if err == nil {
		var f truthFile
		if err = json.Unmarshal(data, &f); err == nil {
			err = f.check(key)
		}
		if err == nil {
			return f.Truth, true
		}
	}
	if c.Log != nil {
		fmt.Fprintf(c.Log, "wpcdb: ignoring ground-truth cache file %s: %v; recomputing\n", path, err)
	}
	return nil, false
}

func (f truthFile) check(key TruthKey) error {
	if f.Format != truthFormat {
		return fmt.Errorf("format %d, want %d", f.Format, truthFormat)
	}
	if f.Key != key {
		return fmt.Errorf("written for another key (%+v)", f.Key)
	}
	if len(f.Truth) != key.Queries {
		return fmt.Errorf("%d queries, want %d", len(f.Truth), key.Queries)
	}
	for j, row := range f.Truth {
		if len(row) == 0 || len(row) > key.K || len(row) != len(f.Truth[0]) {
			return fmt.Errorf("query %d has %d hits (k %d, query 0 has %d)", j, len(row), key.K, len(f.Truth[0]))
		}
	}
	return nil
}

// Store writes the truth of key: to a temporary file in Dir, synced, then
// renamed over the cache file, so a reader never sees half a file.
func (c TruthCache) Store(key TruthKey, truth [][]string) error {
	if c.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	js, err := json.Marshal(truthFile{Format: truthFormat, Key: key, Truth: truth})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.Dir, key.Hash()+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: a no-op
	if _, err := tmp.Write(append(js, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.Path(key))
}

// TruthInfo says where a ground truth came from.
type TruthInfo struct {
	Cached  bool    `json:"cached"`  // loaded from the cache
	File    string  `json:"file"`    // the cache file ("" without a cache)
	Seconds float64 `json:"seconds"` // computing it (0 when cached)
	Threads int     `json:"threads"` // goroutines scanning queries in parallel (0 when cached)
}

// TruthConfig is a ground-truth computation: the exact top K of every
// query over the collection.
type TruthConfig struct {
	Collection *wpcdb.Collection
	Queries    []wpcsim.Cloud
	K          int
	Key        TruthKey
	Cache      TruthCache
	// Threads is how many queries are scanned at once (0: GOMAXPROCS, all
	// cores unless the caller lowered it).
	Threads int
	// Progress, if set, is called as queries complete (it may be called
	// from several goroutines, one at a time).
	Progress func(done, total int)
}

// Truth returns the exact top-K IDs of each query, best first: from the
// cache when it holds cfg.Key, else computed by the exact scan, several
// queries at once, and stored in the cache. A cache that cannot be written
// is an error: the user asked for it.
func Truth(ctx context.Context, cfg TruthConfig) ([][]string, TruthInfo, error) {
	info := TruthInfo{}
	if cfg.Cache.Dir != "" {
		info.File = cfg.Cache.Path(cfg.Key)
	}
	if truth, ok := cfg.Cache.Load(cfg.Key); ok {
		info.Cached = true
		return truth, info, nil
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	truth, err := GroundTruth(ctx, cfg.Collection, cfg.Queries, cfg.K, threads, cfg.Progress)
	if err != nil {
		return nil, info, err
	}
	info.Seconds = time.Since(start).Seconds()
	info.Threads = min(threads, len(cfg.Queries))
	if err := cfg.Cache.Store(cfg.Key, truth); err != nil {
		return nil, info, fmt.Errorf("bench: caching the ground truth: %w", err)
	}
	return truth, info, nil
}

// GroundTruth runs the exact scan for every query, threads queries at a
// time, and returns each one's top-k IDs, best first.
func GroundTruth(ctx context.Context, c *wpcdb.Collection, queries []wpcsim.Cloud, k, threads int, progress func(done, total int)) ([][]string, error) {
	truth := make([][]string, len(queries))
	var (
		mu       sync.Mutex
		done     int
		firstErr error
		next     = make(chan int)
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < max(1, min(threads, len(queries))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				res, err := c.Search(ctx, queries[j], wpcdb.SearchOptions{K: k, Exact: true})
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("query %d: %w", j, err)
					}
					cancel()
				} else {
					row := make([]string, len(res.Hits))
					for i, h := range res.Hits {
						row[i] = h.ID
					}
					truth[j] = row
					done++
					if progress != nil {
						progress(done, len(queries))
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for j := range queries {
		select {
		case next <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return truth, nil
}
