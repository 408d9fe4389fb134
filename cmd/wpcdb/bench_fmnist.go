package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wpcdb/wpcdb/bench"
)

// fmnistFlags are the bench flags of the fmnist-knn workload.
type fmnistFlags struct {
	dir         string
	train, test int
	grid        bool
	val         int
}

func (f *fmnistFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.dir, "fmnist-dir", bench.FashionMNISTDir, "fmnist, fmnist-knn: directory of the Fashion-MNIST IDX files")
	fl.IntVar(&f.train, "train", 0, "fmnist-knn: training images used as references (default all 60,000)")
	fl.IntVar(&f.test, "test", 0, "fmnist-knn: test images classified (default all 10,000)")
	fl.BoolVar(&f.grid, "grid", false, "fmnist-knn: search settings on a validation split of the training images instead of scoring the test set")
	fl.IntVar(&f.val, "val", 2000, "fmnist-knn: validation queries of a --grid run (the last training images)")
}

// runFMNIST runs the fmnist-knn workload: k-NN classification of
// Fashion-MNIST by exact scores, and writes DIR/report.json.
func (a *app) runFMNIST(cmd *cobra.Command, out string, threads int, f fmnistFlags) error {
	if threads > 0 {
		runtime.GOMAXPROCS(threads)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	rep, err := bench.RunFMNIST(cmd.Context(), bench.FMNISTConfig{Dir: f.dir, Train: f.train, Test: f.test, Grid: f.grid, Val: f.val, Log: a.stderr})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	report := map[string]any{
		"workload":     "fmnist-knn",
		"knn_accuracy": rep.Accuracy,
		"methods":      rep.Methods,
		"config": map[string]any{
			"train": rep.Train, "test": rep.Test, "grid": f.grid, "val": map[bool]int{true: f.val}[f.grid],
			"vote":   "majority of the k nearest (ties: the tied label of the nearest neighbour); k per method",
			"scores": "exact: patch clouds scored by blocked kernel sums (checked against wpcsim's scorer), pixels by cosine",
		},
		"exact_check_max_rel_diff": rep.ExactCheck,
		"seconds":                  rep.Seconds,
		"machine":                  map[string]any{"host": host, "cpus": runtime.NumCPU(), "gomaxprocs": runtime.GOMAXPROCS(0), "goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version(), "date": time.Now().UTC().Format(time.RFC3339)},
	}
	if f.grid {
		report["grid_settings"] = rep.Settings
		report["grid"] = rep.Grid
	}
	js, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(report)
	}
	split := "test"
	if f.grid {
		split = "validation"
	}
	fmt.Fprintf(a.stdout, "fmnist-knn (%s accuracy, %d references, %.0f s):\n", split, rep.Train, rep.Seconds)
	for _, name := range []string{"pixels", "cloud-linear", "cloud-kernel"} {
		if m := rep.Methods[name]; m != nil {
			fmt.Fprintf(a.stdout, "  %-13s %.4f  k=%d  %s %s\n", name, m.Accuracy, m.K, m.Kernel, m.Mode)
		}
	}
	return nil
}
