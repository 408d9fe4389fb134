package main

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// benchError makes an invalid bench configuration a usage error.
func benchError(err error) error {
	if errors.Is(err, bench.ErrInvalidRun) {
		return usageError{err}
	}
	return err
}

// benchKNN runs --workload fmnist-knn: k-NN classification of
// Fashion-MNIST by exact scores, into DIR/report.json.
func (a *app) benchKNN(cmd *cobra.Command, f benchFlags) error {
	if f.run.Out == "" {
		return usageError{errors.New("bench: --out DIR is required")}
	}
	cfg := f.knn
	cfg.Dir, cfg.Log = f.run.FMNISTDir, a.stderr
	rep, err := bench.RunFMNIST(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if err := rep.Write(f.run.Out, cfg); err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(rep.Document(cfg))
	}
	_, err = fmt.Fprint(a.stdout, rep.Summary(cfg.Grid))
	return err
}

// benchLoad runs --workload load against --addr: it drops and refills
// the collection with --n compact-shape items (4-16 points x 64 dims),
// then runs the clients, printing QPS and p50/p99 latency (and writing
// report.json when --out is set).
func (a *app) benchLoad(cmd *cobra.Command, f benchFlags) error {
	if a.g.addr == "" {
		return usageError{errors.New("bench --workload load: --addr of a running server is required")}
	}
	kern, err := wpcsim.ParseKernel(f.kernel)
	if err != nil {
		return err
	}
	r, err := a.dial()
	if err != nil {
		return err
	}
	defer r.Close()
	cfg := f.load
	cfg.Conn, cfg.N, cfg.K, cfg.Seed = r.conn, f.run.N, f.run.K, f.run.Seed
	cfg.Config.Similarity.Kernel = kern
	fmt.Fprintf(a.stderr, "wpcdb: filling %s with %d items, then %d clients for %s\n", cfg.Collection, cmp.Or(cfg.N, bench.DefaultLoadItems), cfg.Clients, cfg.Duration)
	rep, err := bench.Load(cmd.Context(), cfg)
	if err != nil {
		return fromRPC(cmd.Context(), err)
	}
	if a.g.json {
		err = a.printJSON(rep)
	} else {
		_, err = fmt.Fprintf(a.stdout, "fill: %.0f items/s\n%s\n", rep.FillItemsPS, rep)
	}
	if err != nil || f.run.Out == "" {
		return err
	}
	return bench.WriteLoadReport(f.run.Out, a.g.addr, cfg, rep)
}
