package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// loadFlags are bench's flags for --workload load.
type loadFlags struct {
	clients       int
	duration      time.Duration
	writeFraction float64
	collection    string
}

func (f *loadFlags) register(fl *pflag.FlagSet) {
	fl.IntVar(&f.clients, "clients", 8, "load: concurrent clients")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "load: how long the clients run")
	fl.Float64Var(&f.writeFraction, "write-fraction", 0, "load: fraction of requests that are Upsert batches of 10 new items (the rest search)")
	fl.StringVar(&f.collection, "collection", "bench-load", "load: the collection to (re)create on the server")
}

// benchLoad runs --workload load against --addr: it drops and refills
// the collection with n compact-shape items (4-16 points x 64 dims), then
// runs the clients, printing QPS and p50/p99 latency (and writing
// report.json when --out is set).
func (a *app) benchLoad(cmd *cobra.Command, f loadFlags, n int, kernel string, seed uint64, k int, out string) error {
	if a.g.addr == "" {
		return usageError{fmt.Errorf("bench --workload load: --addr of a running server is required")}
	}
	if !cmd.Flags().Changed("n") {
		n = 10_000
	}
	kern, err := wpcsim.ParseKernel(kernel)
	if err != nil {
		return err
	}
	r, err := a.dial()
	if err != nil {
		return err
	}
	defer r.Close()
	shape := bench.CompactShape
	cfg := bench.LoadConfig{
		Conn: r.conn, Collection: f.collection, Synth: bench.NewSynth(shape, seed), N: n,
		Config:  wpcdb.CollectionConfig{Dim: shape.Dim, MaxPoints: collconfig.DefaultMaxPoints, Similarity: wpcsim.Config{Kernel: kern}},
		Clients: f.clients, Duration: f.duration, K: k, WriteFraction: f.writeFraction, Seed: seed,
	}
	fmt.Fprintf(a.stderr, "wpcdb: filling %s with %d items, then %d clients for %s\n", f.collection, n, f.clients, f.duration)
	rep, err := bench.Load(cmd.Context(), cfg)
	if err != nil {
		return fromRPC(cmd.Context(), err)
	}
	if a.g.json {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "fill: %.0f items/s\n%s\n", rep.FillItemsPS, rep)
	}
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(map[string]any{"workload": "load", "addr": a.g.addr, "n": n, "kernel": kern.String(), "k": k, "load": rep}, "", "  ")
	return os.WriteFile(filepath.Join(out, "report.json"), append(js, '\n'), 0o644)
}
