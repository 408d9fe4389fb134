package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Document is the report.json of a fmnist-knn run made with cfg.
func (r *FMNISTReport) Document(cfg FMNISTConfig) map[string]any {
	m := machine()
	m["gomaxprocs"] = runtime.GOMAXPROCS(0)
	doc := map[string]any{
		"workload":     "fmnist-knn",
		"knn_accuracy": r.Accuracy,
		"methods":      r.Methods,
		"config": map[string]any{
			"train": r.Train, "test": r.Test, "grid": cfg.Grid, "val": map[bool]int{true: cfg.Val}[cfg.Grid],
			"vote":   "majority of the k nearest (ties: the tied label of the nearest neighbour); k per method",
			"scores": "exact: patch clouds scored by blocked kernel sums (checked against wpcsim's scorer), pixels by cosine",
		},
		"exact_check_max_rel_diff": r.ExactCheck,
		"seconds":                  r.Seconds,
		"machine":                  m,
	}
	if cfg.Grid {
		doc["grid_settings"] = r.Settings
		doc["grid"] = r.Grid
	}
	return doc
}

// Write writes the Document as dir/report.json.
func (r *FMNISTReport) Write(dir string, cfg FMNISTConfig) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r.Document(cfg), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644)
}

// Summary is the accuracy of each method as text (of the validation split
// in a grid run).
func (r *FMNISTReport) Summary(grid bool) string {
	var b strings.Builder
	split := "test"
	if grid {
		split = "validation"
	}
	fmt.Fprintf(&b, "fmnist-knn (%s accuracy, %d references, %.0f s):\n", split, r.Train, r.Seconds)
	for _, name := range []string{"pixels", "cloud-linear", "cloud-kernel"} {
		if m := r.Methods[name]; m != nil {
			fmt.Fprintf(&b, "  %-13s %.4f  k=%d  %s %s\n", name, m.Accuracy, m.K, m.Kernel, m.Mode)
		}
	}
	return b.String()
}
