package index

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wpcdb/wpcdb/internal/npy"
)

// BenchmarkHNSWExported builds a graph over the first-stage vectors a
// `wpcdb bench` run exported for its peers (DIR/peers/first_stage_items.npy,
// first_stage_queries.npy and truth.npy, whose IDs are row numbers) and
// walks it at several beams, reporting recall@10 against the exact top 10
// and the thread CPU time per query: the graph alone, beside hnswlib over
// the same files (bench/hnsw_compare.py). Skipped unless
// WPCDB_HNSW_NPY=DIR/peers; WPCDB_HNSW_EFS lists the beams (default
// 16,32,64,128,256), WPCDB_HNSW_M and WPCDB_HNSW_EFC the graph's options,
// WPCDB_HNSW_KEEP=0 turns keepPrunedConnections off, WPCDB_HNSW_CACHE=FILE
// keeps the built graph in FILE (loaded instead of built when present).
//
//	WPCDB_HNSW_NPY=/tmp/c20k/peers go test -run '^$' -bench HNSWExported ./index
func BenchmarkHNSWExported(b *testing.B) {
	dir := os.Getenv("WPCDB_HNSW_NPY")
	if dir == "" {
		b.Skip("WPCDB_HNSW_NPY is not set")
	}
	items, dim := readNpyF32(b, filepath.Join(dir, "first_stage_items.npy"))
	qs, _ := readNpyF32(b, filepath.Join(dir, "first_stage_queries.npy"))
	truth := readTruth(b, filepath.Join(dir, "truth.npy"), len(qs))
	if os.Getenv("WPCDB_HNSW_KEEP") == "0" {
		keepPrunedConnections = false
		defer func() { keepPrunedConnections = true }()
	}
	opts := HNSWOptions{M: envInt("WPCDB_HNSW_M", 0), EfConstruction: envInt("WPCDB_HNSW_EFC", 0)}
	h, err := NewHNSW(dim, InnerProduct, opts)
	if err != nil {
		b.Fatal(err)
	}
	cache := os.Getenv("WPCDB_HNSW_CACHE") // a file for the built graph
	if cache != "" {
		if blob, err := os.ReadFile(cache); err == nil {
			if h, err = LoadHNSW(memPersister{hnswBlobName: blob}); err != nil {
				b.Fatal(err)
			}
			b.Logf("graph loaded from %s", cache)
		}
	}
	start, cpu0 := time.Now(), threadCPU()
	if h.Len() == 0 {
		h.reserve(len(items))
		for i, v := range items {
			if err := h.Add(uint32(i), v); err != nil {
				b.Fatal(err)
			}
		}
		if cache != "" {
			p := memPersister{}
			if err := h.Save(p); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(cache, p[hnswBlobName], 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	deg, noIn := 0, 0
	in := make([]int, len(h.ids))
	for s := range h.ids {
		ns := h.neighbours(uint32(s), 0)
		deg += len(ns)
		for _, n := range ns {
			in[n]++
		}
	}
	for _, c := range in {
		if c == 0 {
			noIn++
		}
	}
	b.Logf("n=%d dim=%d %+v: built in %.2f s (%.2f CPU s); layer 0: mean degree %.1f, %d nodes without in-links", len(items), dim, h.Options(), time.Since(start).Seconds(), (threadCPU() - cpu0).Seconds(), float64(deg)/float64(len(h.ids)), noIn)
	efs := []int{16, 32, 64, 128, 256}
	if s := os.Getenv("WPCDB_HNSW_EFS"); s != "" {
		efs = efs[:0]
		for _, f := range strings.Split(s, ",") {
			ef, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			efs = append(efs, ef)
		}
	}
	for _, ef := range efs {
		b.Run(fmt.Sprintf("ef=%d", ef), func(b *testing.B) {
			var recall float64
			walkCounts = &struct{ expanded, scored int }{}
			rescoreCounts = &struct{ cands, rescored int }{}
			for i, q := range qs {
				got, _ := h.Search(q, 10, nil, Params{Ef: ef})
				recall += recallIDs(got, truth[i])
			}
			counts, rc := *walkCounts, *rescoreCounts
			walkCounts, rescoreCounts = nil, nil
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			i, cpu0 := 0, threadCPU()
			for b.Loop() {
				h.Search(qs[i%len(qs)], 10, nil, Params{Ef: ef})
				i++
			}
			b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/float64(i), "cpu-ns/q")
			b.ReportMetric(recall/float64(len(qs)), "recall@10")
			b.ReportMetric(float64(counts.scored)/float64(len(qs)), "scored/q")
			b.ReportMetric(float64(counts.expanded)/float64(len(qs)), "expanded/q")
			b.ReportMetric(float64(rc.rescored)/float64(len(qs)), "rescored/q")
		})
	}
}

func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		if v, err := strconv.Atoi(s); err == nil {
			return v
		}
	}
	return def
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func readNpyF32(b *testing.B, path string) ([][]float32, int) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	data, err := r.ReadFloat32(0)
	if err != nil {
		b.Fatal(err)
	}
	dim := r.Header.Shape[1]
	var rows [][]float32
	for i := 0; i+dim <= len(data); i += dim {
		rows = append(rows, data[i:i+dim:i+dim])
	}
	return rows, dim
}

// readTruth reads an (nq, k) '<i8' array of row numbers.
func readTruth(b *testing.B, path string, nq int) [][]uint32 {
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	f, _ := os.Open(path)
	r, err := npy.NewReader(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	data := raw[r.DataOffset:]
	k := r.Header.Shape[1]
	out := make([][]uint32, nq)
	for i := range out {
		for j := 0; j < k; j++ {
			o := (i*k + j) * 8
			out[i] = append(out[i], uint32(uint64(data[o])|uint64(data[o+1])<<8|uint64(data[o+2])<<16|uint64(data[o+3])<<24))
		}
	}
	return out
}

func recallIDs(got []Result, want []uint32) float64 {
	hit := 0
	for _, r := range got {
		for _, w := range want {
			if r.ID == w {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(len(want))
}
