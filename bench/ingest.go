package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
)

// IngestConfig is one ingest measurement: N items of a synthetic shape (or
// of any Source) into a fresh collection under Dir.
type IngestConfig struct {
	Dir   string
	Synth *Synth
	// Source, when set, gives the items instead of Synth.
	Source     Source
	N          int
	Collection wpcdb.CollectionConfig
	Batch      int // items per Upsert; 0 means 1000 (fewer when large)
	// Progress, if set, is called after each committed batch with the
	// number of items committed so far.
	Progress func(done int)
	// CPUProfile, if set, is a file that receives a CPU profile
	// (runtime/pprof) of the timed load alone: from the first upsert to
	// the last acknowledgement, without the first stage's build after it.
	CPUProfile string
}

// IngestReport is what an ingest measured.
type IngestReport struct {
	Items        int     `json:"items"`
	Points       int64   `json:"points"`
	Seconds      float64 `json:"seconds"`
	ItemsPerSec  float64 `json:"items_per_s"`
	PointsPerSec float64 `json:"points_per_s"`
	MBPerSec     float64 `json:"mb_per_s"`       // of raw float32 input (points and weights)
	BytesOnDisk  int64   `json:"bytes_on_disk"`  // every file, WAL included
	BytesPerItem float64 `json:"bytes_per_item"` // sstables only, after close: items and the saved first stage
	// DataBytesPerItem is the sstables' size right after the last upsert,
	// before the first stage is built and saved: what the items cost at
	// rest. PayloadBytesPerItem is what they are: the encoded points and
	// weights, the ID and the attributes as JSON. DiskPerPayload is the
	// first over the second (the target: at most 1.3).
	DataBytesPerItem    float64 `json:"data_bytes_per_item"`
	PayloadBytesPerItem float64 `json:"payload_bytes_per_item"`
	DiskPerPayload      float64 `json:"disk_per_payload"`
	PeakRSSBytes        int64   `json:"peak_rss_bytes"`
	// LoadPeakRSSBytes is the peak RSS when the last batch was
	// acknowledged: the load's own, before the first stage is built.
	LoadPeakRSSBytes int64 `json:"load_peak_rss_bytes"`
	// CPUSeconds is the process's CPU time (user + system) during the
	// load, the generation of the items included; ItemsPerCPUSecond is
	// Items over it: on a machine shared with other work, where wall time
	// counts the waits for a core, this is the figure to compare.
	CPUSeconds        float64 `json:"cpu_s"`
	ItemsPerCPUSecond float64 `json:"items_per_cpu_s"`
	// GenerateCPUSeconds is the part of CPUSeconds spent generating (or
	// reading) the items, measured on the generating threads (Linux; 0
	// elsewhere), and ItemsPerStoreCPUSecond Items over the rest: wpcdb's
	// own cost, the figure to set beside a peer's writes alone.
	GenerateCPUSeconds     float64 `json:"generate_cpu_s"`
	ItemsPerStoreCPUSecond float64 `json:"items_per_store_cpu_s"`
	Threads                int     `json:"threads"`
	Encoding               string  `json:"encoding"`
	Kernel                 string  `json:"kernel"`
	FeatureDim             int     `json:"rff_dim"`
	GenerateAhead          bool    `json:"generate_ahead"` // items were generated concurrently with the ingest
	// The first stage: its kind once loaded ("flat" or "hnsw"), and how
	// long its graph took to catch up with the last write (the graph is
	// built in the background during the ingest; Seconds excludes this).
	Index        string  `json:"index"`
	IndexSeconds float64 `json:"index_catch_up_s"`
}

// Ingest creates the collection "bench" in a new database under cfg.Dir,
// upserts cfg.N generated items in batches, closes the database and
// measures. The items are generated before the clock starts when they
// fit in preGenerateBytes; otherwise generation runs ahead on its own
// goroutines, its CPU counted apart (GenerateCPUSeconds).
func Ingest(ctx context.Context, cfg IngestConfig) (IngestReport, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = ingest.DefaultBatch
	}
	db, err := wpcdb.Open(cfg.Dir, nil)
	if err != nil {
		return IngestReport{}, err
	}
	c, err := db.CreateCollection(ctx, "bench", cfg.Collection)
	if err != nil {
		db.Close()
		return IngestReport{}, err
	}
	if cfg.Source == nil {
		cfg.Source = synthSource{cfg.Synth}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The ingest pipeline of the CLI and the server (ingest.Commit). The
	// items are generated before the clock starts when they fit in
	// preGenerateBytes, as the LanceDB peer's Arrow batches are built before
	// its clock starts; otherwise they are generated ahead on their own
	// goroutines, which share the cores with the load. Measured (compact
	// 100k, default kernel, 2 cores): generation is 0.9 CPU-s, a third of
	// the load's 2.7 CPU-s when it runs beside it.
	var gen genTotals
	var batches chan ingest.Batch
	ahead := cfg.N*itemBytesBound(cfg.Source) > preGenerateBytes
	if ahead {
		batches = make(chan ingest.Batch, 2)
		go generate(ctx, cfg, batches, &gen)
	} else {
		per := batchItems(cfg)
		batches = make(chan ingest.Batch, (cfg.N+per-1)/per+1)
		generate(ctx, cfg, batches, &gen)
		gen.cpuMicros.Store(0) // spent before the clock
	}
	var rep IngestReport
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		db.Close()
		return IngestReport{}, err
	}
	start, cpu0 := time.Now(), processCPU()
	st, err := ingest.Commit(ctx, c, batches, ingest.Options{Unit: "item", Progress: func(st ingest.Stats) {
		if cfg.Progress != nil {
			cfg.Progress(st.Committed)
		}
	}})
	if err != nil {
		stopProfile()
		db.Close()
		return IngestReport{}, err
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.CPUSeconds = (processCPU() - cpu0) / 1000 // ms
	if err := stopProfile(); err != nil {
		db.Close()
		return IngestReport{}, err
	}
	rep.Items, rep.Points = st.Committed, gen.points.Load()
	rep.LoadPeakRSSBytes = PeakRSS()
	payload := gen.payload.Load()
	rep.GenerateCPUSeconds = float64(gen.cpuMicros.Load()) / 1e6
	if rep.CPUSeconds > 0 {
		rep.ItemsPerCPUSecond = float64(rep.Items) / rep.CPUSeconds
	}
	if store := rep.CPUSeconds - rep.GenerateCPUSeconds; store > 0 {
		rep.ItemsPerStoreCPUSecond = float64(rep.Items) / store
	}
	items := float64(max(rep.Items, 1))
	rep.DataBytesPerItem = float64(dirSize(cfg.Dir, ".sst")) / items
	rep.PayloadBytesPerItem = float64(payload) / items
	rep.DiskPerPayload = rep.DataBytesPerItem / max(rep.PayloadBytesPerItem, 1)
	t0 := time.Now()
	// The load is done: the first stage calibrates, then its graph catches
	// up; both count as the index's catch-up time.
	if err := c.LoadDone(ctx); err != nil {
		db.Close()
		return IngestReport{}, err
	}
	if err := c.WaitIndex(ctx); err != nil {
		db.Close()
		return IngestReport{}, err
	}
	rep.IndexSeconds = time.Since(t0).Seconds()
	rep.Index = c.IndexStatus().Kind
	if err := db.Close(); err != nil {
		return IngestReport{}, err
	}
	full := c.Config()
	rep.ItemsPerSec = float64(rep.Items) / rep.Seconds
	rep.PointsPerSec = float64(rep.Points) / rep.Seconds
	rep.MBPerSec = float64(rep.Points*int64(full.Dim+1)*4) / rep.Seconds / 1e6
	rep.BytesOnDisk = dirSize(cfg.Dir, "")
	rep.BytesPerItem = float64(dirSize(cfg.Dir, ".sst")) / float64(max(rep.Items, 1))
	rep.PeakRSSBytes = PeakRSS()
	rep.Threads = runtime.GOMAXPROCS(0)
	rep.Encoding = full.Encoding.String()
	rep.Kernel = full.Similarity.Kernel.String()
	rep.FeatureDim = full.Features.Dim
	rep.GenerateAhead = ahead
	return rep, nil
}

// preGenerateBytes bounds the items Ingest generates before its clock
// starts (itemBytesBound each): 100k compact items are 440 MB at most,
// the 1M-item run (4.4 GB) generates ahead, within the load's memory.
const preGenerateBytes = 1 << 30

// itemBytesBound bounds an item of src in memory: its points and weights
// as float32 at the source's most points, and a point's worth more for
// the ID, attributes and headers.
func itemBytesBound(src Source) int {
	dim, maxPoints := src.Shape()
	return 4 * (maxPoints + 1) * (dim + 1)
}

// startCPUProfile starts a CPU profile into path ("" : none) and returns
// the function that stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() error {
		once.Do(func() {
			pprof.StopCPUProfile()
			err = f.Close()
		})
		return err
	}, nil
}

// genTotals count what generate produced: points and payloadBytes.
type genTotals struct {
	points, payload atomic.Int64
	cpuMicros       atomic.Int64 // thread CPU time of the generating goroutines
}

// payloadBytes is what an item is, in the collection's point encoding
// (bytes per coordinate): points, weights, ID and attributes as JSON.
func payloadBytes(it wpcdb.Item, pointBytes int) int64 {
	n := int64(len(it.ID)) + int64(it.Cloud.Len())*int64(4+pointBytes*it.Cloud.Dim)
	if len(it.Attrs) > 0 {
		a, _ := json.Marshal(it.Attrs)
		n += int64(len(a))
	}
	return n
}

// generate produces batches of items in order, generating each batch's
// items in parallel.
func generate(ctx context.Context, cfg IngestConfig, out chan<- ingest.Batch, totals *genTotals) {
	defer close(out)
	pointBytes := 4
	if cfg.Collection.WithDefaults().Encoding != wpcdb.EncodingF32 {
		pointBytes = 2 // f16, bf16
	}
	per := batchItems(cfg)
	for lo := 0; lo < cfg.N; {
		n := min(per, cfg.N-lo)
		b := make([]wpcdb.Item, n)
		errs := make([]error, n)
		pay := make([]int64, n)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Locked to its thread, so that the thread's CPU time is
				// the generation's.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 := threadCPU()
				for i := w; i < n; i += workers {
					b[i], errs[i] = cfg.Source.Item(lo + i)
					if errs[i] == nil {
						pay[i] = payloadBytes(b[i], pointBytes)
					}
				}
				totals.cpuMicros.Add(int64(1000 * (threadCPU() - t0)))
			}()
		}
		wg.Wait()
		gb := ingest.Batch{Items: b}
		for i, it := range b {
			if errs[i] != nil {
				gb = ingest.Batch{Err: fmt.Errorf("bench: item %d: %w", lo+i, errs[i])}
				break
			}
			gb.Pos = append(gb.Pos, lo+i)
			totals.points.Add(int64(it.Cloud.Len()))
			totals.payload.Add(pay[i])
		}
		if !ingest.Send(ctx, out, gb) || gb.Err != nil {
			return
		}
		lo += n
	}
}

// batchItems is the items of a batch generate hands the load:
// cfg.Batch, fewer when they would be over ingest.MaxBatchFloats.
func batchItems(cfg IngestConfig) int {
	dim, maxPoints := cfg.Source.Shape()
	return max(1, min(cfg.Batch, ingest.MaxBatchFloats/((maxPoints+1)*(dim+1))))
}

// dirSize sums the sizes of the files under dir whose names end in suffix.
func dirSize(dir, suffix string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, suffix) {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// PeakRSS returns the process's peak resident set size (VmHWM) in bytes,
// or 0 where /proc is not available.
func PeakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// String is the one-line summary of an ingest.
func (r IngestReport) String() string {
	return fmt.Sprintf("ingested %d items in %.2f s (%.0f items/s, %.0f items per CPU second, %.0f without generating them, %.3g points/s, %.1f MB/s, %.0f bytes/item of data on disk = %.2f× the %.0f of points, weights, ID and attributes, %.0f with the saved first stage, peak RSS %d MiB (%d MiB at the end of the load), %d threads); %s first stage built %.2f s later",
		r.Items, r.Seconds, r.ItemsPerSec, r.ItemsPerCPUSecond, r.ItemsPerStoreCPUSecond, r.PointsPerSec, r.MBPerSec, r.DataBytesPerItem, r.DiskPerPayload, r.PayloadBytesPerItem, r.BytesPerItem, r.PeakRSSBytes>>20, r.LoadPeakRSSBytes>>20, r.Threads, r.Index, r.IndexSeconds)
}
