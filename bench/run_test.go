package bench

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb"
)

// TestRunCompact runs the compact workload small: the report names the
// workload's config, the exact run agrees with the truth, and depth 400
// over 300 items reranks every item, so its recall is exactly 1.
func TestRunCompact(t *testing.T) {
	out := t.TempDir()
	rep, err := Run(context.Background(), RunConfig{Workload: "compact", Out: out, N: 300, Queries: 4, Seed: 1, K: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ingest == nil || rep.Ingest.Items != 300 || rep.Config["n"] != 300 || rep.Config["k"] != 5 || rep.Config["queries"] != 4 || rep.Config["encoding"] != "f32" {
		t.Fatalf("report: ingest %+v config %v", rep.Ingest, rep.Config)
	}
	var exact, deep *Measurement
	for i, m := range rep.Runs {
		switch {
		case m.Method == "exact":
			exact = &rep.Runs[i]
		case m.Method == "wpcdb" && m.Params["candidates"] == 400:
			deep = &rep.Runs[i]
		}
	}
	if exact == nil || exact.Recall != 1 || deep == nil || deep.Recall != 1 {
		t.Fatalf("runs %+v", rep.Runs)
	}
	if rep.Skipped["python-pipelines"] == "" {
		t.Errorf("skipped %v", rep.Skipped)
	}
	if s := rep.Summary(); !strings.HasPrefix(s, "ingested 300 items") || !strings.Contains(s, "recall@5 1.000") {
		t.Errorf("summary:\n%s", s)
	}
	// The database is left behind, closed, with the items.
	db, err := wpcdb.Open(filepath.Join(out, "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if c, err := db.Collection("bench"); err != nil || c.Count() != 300 {
		t.Fatalf("bench collection: %v", err)
	}
}

func TestRunInvalid(t *testing.T) {
	for _, tc := range []struct {
		cfg  RunConfig
		want string
	}{
		{RunConfig{Workload: "compact"}, "--out DIR is required"},
		{RunConfig{Workload: "tiny", Out: t.TempDir()}, `unknown workload "tiny"`},
		{RunConfig{Workload: "file", Out: t.TempDir(), Input: "x.jsonl"}, "needs --input items.jsonl and --query-input"},
		{RunConfig{Workload: "compact", Out: t.TempDir(), N: -1}, "--n must be positive"},
		{RunConfig{Workload: "paper", Out: t.TempDir(), Queries: AllQueries}, "--queries must be at least 0"},
	} {
		_, err := Run(context.Background(), tc.cfg)
		if !errors.Is(err, ErrInvalidRun) || !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalidRun with %q", tc.cfg, err, tc.want)
		}
	}
	// A bad kernel is the kernel's error, not a usage error.
	if _, err := Run(context.Background(), RunConfig{Workload: "compact", Out: t.TempDir(), N: 10, Kernel: "cubic"}); err == nil || errors.Is(err, ErrInvalidRun) {
		t.Errorf("kernel cubic: %v", err)
	}
}
