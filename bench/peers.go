package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// PeerInput is what the peer pipelines need: the same items, queries and
// exact ground truth wpcdb was measured with.
type PeerInput struct {
	Synth       *Synth
	N           int
	Queries     int
	QueryPoints int
	Truth       [][]int // per query, the exact top-k item indices
	Kernel      wpcsim.Kernel
	Norm        wpcsim.Norm
	Score       wpcsim.ScoreMode
	Candidates  []int
}

// ExportForPeers writes the workload as .npy files (points as float16, to
// halve the size) and config.json into dir, for bench/peers.py.
func ExportForPeers(dir string, in PeerInput) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m, d := in.Synth.MaxPoints, in.Synth.Dim
	pts := make([]uint16, 0, in.N*m*d)
	ws := make([]float32, 0, in.N*m)
	lens := make([]int64, in.N)
	half := make([]uint16, m*d)
	for i := 0; i < in.N; i++ {
		c := in.Synth.Item(i).Cloud
		lens[i] = int64(c.Len())
		clear(half)
		simd.F32ToF16(half[:len(c.Points)], c.Points)
		pts = append(pts, half...)
		ws = append(ws, c.Weights...)
		ws = append(ws, make([]float32, m-c.Len())...)
	}
	qp := make([]float32, 0, in.Queries*in.QueryPoints*d)
	qw := make([]float32, 0, in.Queries*in.QueryPoints)
	for j := 0; j < in.Queries; j++ {
		q := in.Synth.Query(j, in.QueryPoints)
		qp = append(qp, q.Points...)
		qw = append(qw, q.Weights...)
	}
	k := 0
	if len(in.Truth) > 0 {
		k = len(in.Truth[0])
	}
	truth := make([]int64, 0, in.Queries*k)
	for _, t := range in.Truth {
		if len(t) != k {
			return fmt.Errorf("bench: ground truth rows differ in length (%d, %d)", len(t), k)
		}
		for _, i := range t {
			truth = append(truth, int64(i))
		}
	}
	files := []struct {
		name  string
		descr string
		shape []int
		data  []byte
	}{
		{"items_points.npy", "<f2", []int{in.N, m, d}, u16Bytes(pts)},
		{"items_weights.npy", "<f4", []int{in.N, m}, f32Bytes(ws)},
		{"items_lengths.npy", "<i8", []int{in.N}, i64Bytes(lens)},
		{"queries_points.npy", "<f4", []int{in.Queries, in.QueryPoints, d}, f32Bytes(qp)},
		{"queries_weights.npy", "<f4", []int{in.Queries, in.QueryPoints}, f32Bytes(qw)},
		{"truth.npy", "<i8", []int{in.Queries, k}, i64Bytes(truth)},
	}
	for _, f := range files {
		if err := writeRawNPY(filepath.Join(dir, f.name), f.descr, f.shape, f.data); err != nil {
			return err
		}
	}
	type term struct {
		Kind  string  `json:"kind"`
		Alpha float64 `json:"alpha"`
		Param float64 `json:"param"`
	}
	cfg := map[string]any{"norm": in.Norm.String(), "score": in.Score.String(), "maxsim": in.Kernel.IsMaxSim(), "candidates": in.Candidates}
	var terms []term
	for _, t := range in.Kernel.Terms {
		terms = append(terms, term{t.Kind.String(), t.Alpha, t.Param})
	}
	cfg["terms"] = terms
	js, _ := json.Marshal(cfg)
	return os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644)
}

// RunPeers runs bench/peers.py (found next to this package's source or at
// script) on dir and returns the peers' runs and those it skipped, with why.
// A missing Python is itself a skip, not an error.
func RunPeers(ctx context.Context, script, dir string) ([]Run, map[string]string, error) {
	skipped := map[string]string{}
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		skipped["python-pipelines"] = "/usr/bin/python3 not found; install python3-numpy, python3-hnswlib, python3-faiss"
		return nil, skipped, nil
	}
	if _, err := os.Stat(script); err != nil {
		skipped["python-pipelines"] = "bench/peers.py not found: run from the repository"
		return nil, skipped, nil
	}
	cmd := exec.CommandContext(ctx, python, script, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		skipped["python-pipelines"] = fmt.Sprintf("peers.py failed: %v: %s", err, msg)
		return nil, skipped, nil
	}
	var runs []Run
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line struct {
			Run
			Skipped string `json:"skipped"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, nil, fmt.Errorf("bench: peers.py printed %q: %w", sc.Text(), err)
		}
		if line.Skipped != "" {
			skipped[line.Skipped] = line.Reason
			continue
		}
		line.Run.Peer = true
		runs = append(runs, line.Run)
	}
	return runs, skipped, sc.Err()
}

func writeRawNPY(path, descr string, shape []int, data []byte) error {
	var hdr bytes.Buffer
	if err := npy.WriteHeader(&hdr, descr, shape); err != nil {
		return err
	}
	return os.WriteFile(path, append(hdr.Bytes(), data...), 0o644)
}

func u16Bytes(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func i64Bytes(v []int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}
