package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestCalibrateCLI: an ingest ends with a calibration (describe shows a
// measured recall), `collection calibrate` prints every candidate with the
// chosen one marked, --queries takes the workload's clouds, and its errors
// name the file.
func TestCalibrateCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "items.jsonl")
	writeJSONL(t, in, 21, 400, 6, 12)
	queries := filepath.Join(dir, "queries.jsonl")
	writeJSONL(t, queries, 22, 12, 4, 12)
	if _, stderr, code := runCLI(t, "", "--data", data, "collection", "create", "c", "--dim", "12", "--rff-dim", "128"); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := runCLI(t, "", "--data", data, "ingest", "c", "--input", in); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := runCLI(t, "", "--data", data, "--json", "collection", "describe", "c")
	var desc struct {
		FirstStageBytes float64 `json:"first_stage_bytes"`
		Index           struct {
			Representation string  `json:"representation"`
			Dim            float64 `json:"dim"`
			Recall         float64 `json:"recall"`
		} `json:"index_status"`
	}
	if err := json.Unmarshal([]byte(stdout), &desc); code != 0 || err != nil {
		t.Fatalf("describe: %d %v %s %s", code, err, stdout, stderr)
	}
	if desc.Index.Recall <= 0 || desc.Index.Representation == "" || desc.FirstStageBytes < 400*desc.Index.Dim || desc.FirstStageBytes > 400*(4*desc.Index.Dim+64) {
		t.Fatalf("after ingest, describe shows %+v: want a calibrated flat first stage of 400 × (a code or vector of dim and its bookkeeping) bytes", desc)
	}
	stdout, stderr, code = runCLI(t, "", "--data", data, "collection", "calibrate", "c", "--queries", queries)
	if code != 0 || !strings.Contains(stdout, "<- chosen") || !strings.Contains(stdout, "phi") || !strings.Contains(stdout, "12 queries") {
		t.Fatalf("calibrate: %d %q %q", code, stdout, stderr)
	}
	stdout, _, _ = runCLI(t, "", "--data", data, "collection", "describe", "c")
	if !strings.Contains(stdout, "calibrated: recall@10") {
		t.Fatalf("describe after calibrate: %s", stdout)
	}
	_, stderr, code = runCLI(t, "", "--data", data, "collection", "calibrate", "c", "--queries", in+".missing")
	if code == 0 || !strings.Contains(stderr, "items.jsonl.missing") {
		t.Fatalf("missing queries file: %d %q", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "--data", data, "collection", "calibrate", "nope")
	if code == 0 || !strings.Contains(stderr, "nope") {
		t.Fatalf("unknown collection: %d %q", code, stderr)
	}
}
