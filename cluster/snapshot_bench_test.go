//go:build unix

package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// BenchmarkInstallCheckpoint measures a snapshot's install (items a second
// into an empty node), the cost a compaction threshold weighs against the
// log's bytes: 2,000 compact items (8 points × 64 dims) per op.
func BenchmarkInstallCheckpoint(b *testing.B) {
	ctx := context.Background()
	rng := wpctest.NewRand(1924)
	src, err := wpcdb.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	c, err := src.CreateCollection(ctx, "c.s0", wpcdb.CollectionConfig{Dim: 64})
	if err != nil {
		b.Fatal(err)
	}
	const n = 2000
	items := make([]wpcdb.Item, n)
	for i := range items {
		cl := wpctest.RandomCloud(rng, 8, 64, wpctest.Shape{})
		items[i] = wpcdb.Item{ID: fmt.Sprintf("it-%05d", i), Cloud: wpcsim.Cloud{Dim: cl.Dim, Weights: cl.Weights, Points: cl.Points}}
	}
	if err := c.Upsert(ctx, items); err != nil {
		b.Fatal(err)
	}
	ck := filepath.Join(b.TempDir(), "ck")
	if err := src.Snapshot(ck); err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst, err := wpcdb.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		c0 := processCPU()
		b.StartTimer()
		if err := installCheckpoint(ctx, dst, ck, "c.s0"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += processCPU() - c0
		dst.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-µs/item")
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
