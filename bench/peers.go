package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// PeerInput is what the peer pipelines need: the same items, queries and
// exact ground truth wpcdb was measured with.
type PeerInput struct {
	Source  Source         // the items, by index
	N       int            // items 0..N-1 of Source
	Queries []wpcsim.Cloud // the queries
	// Truth holds, per query, the IDs of the exact top k (report order).
	Truth      [][]string
	Kernel     wpcsim.Kernel
	Norm       wpcsim.Norm
	RawPoints  bool
	Score      wpcsim.ScoreMode
	Candidates []int
	// Collection is the bench collection's configuration (as
	// Collection.Config returns it). When set (Dim > 0), the export also
	// holds wpcdb's first-stage vectors (ComputeFirstStage), which
	// single-vector peers index.
	Collection wpcdb.CollectionConfig
}

// ExportForPeers writes the workload as .npy files (points as float16, to
// halve the size, unless in.Collection stores them as f32) and config.json
// into dir, for bench/peers.py and bench/peers-node/peers.js: items and
// queries padded to their largest point count, with their lengths, and the
// truth as item indices. With in.Collection set it also writes wpcdb's
// first-stage vectors: first_stage_items.npy (N, D') and
// first_stage_queries.npy (Q, D'), float32.
func ExportForPeers(dir string, in PeerInput) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Items are read twice (shape and IDs, then the export) rather than
	// held: at paper shape they are 400 KB each in float32.
	item := func(i int) (wpcsim.Cloud, error) {
		it, err := in.Source.Item(i)
		if err != nil {
			return wpcsim.Cloud{}, fmt.Errorf("bench: item %d: %w", i, err)
		}
		return it.Cloud, nil
	}
	index := make(map[string]int, in.N)
	m, d := 0, 0
	for i := 0; i < in.N; i++ {
		it, err := in.Source.Item(i)
		if err != nil {
			return fmt.Errorf("bench: item %d: %w", i, err)
		}
		index[it.ID] = i
		m, d = max(m, it.Cloud.Len()), max(d, it.Cloud.Dim)
	}
	// Points stored as f32 are exported as f32: rounding them to f16 would
	// hand the peers slightly different clouds from those wpcdb scores.
	// They are written item by item, never held: at paper 20k they are
	// 4 GB in f16, and holding them (twice, with the file's copy) beside
	// the peers' own copy ran the machine out of memory.
	f32Points := in.Collection.Dim > 0 && in.Collection.Encoding == collconfig.EncodingF32
	ptsDescr := "<f2"
	if f32Points {
		ptsDescr = "<f4"
	}
	ws := make([]float32, 0, in.N*m)
	lens := make([]int64, in.N)
	half := make([]uint16, m*d)
	full := make([]float32, m*d)
	err := writeNPY(filepath.Join(dir, "items_points.npy"), ptsDescr, []int{in.N, m, d}, func(w io.Writer) error {
		for i := 0; i < in.N; i++ {
			c, err := item(i)
			if err != nil {
				return err
			}
			lens[i] = int64(c.Len())
			ws = append(ws, c.Weights...)
			ws = append(ws, make([]float32, m-c.Len())...)
			var row []byte
			if f32Points {
				clear(full)
				copy(full, c.Points)
				row = f32Bytes(full)
			} else {
				clear(half)
				simd.F32ToF16(half[:len(c.Points)], c.Points)
				row = u16Bytes(half)
			}
			if _, err := w.Write(row); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	qm := 0
	for _, q := range in.Queries {
		qm = max(qm, q.Len())
	}
	nq := len(in.Queries)
	qp := make([]float32, 0, nq*qm*d)
	qw := make([]float32, 0, nq*qm)
	qlens := make([]int64, nq)
	for j, q := range in.Queries {
		qlens[j] = int64(q.Len())
		qp = append(append(qp, q.Points...), make([]float32, (qm-q.Len())*d)...)
		qw = append(append(qw, q.Weights...), make([]float32, qm-q.Len())...)
	}
	k := 0
	if len(in.Truth) > 0 {
		k = len(in.Truth[0])
	}
	truth := make([]int64, 0, nq*k)
	for j, t := range in.Truth {
		if len(t) != k {
			return fmt.Errorf("bench: ground truth rows differ in length (%d, %d)", len(t), k)
		}
		for _, id := range t {
			i, ok := index[id]
			if !ok {
				return fmt.Errorf("bench: ground truth of query %d names %q, not among the %d items", j, id, in.N)
			}
			truth = append(truth, int64(i))
		}
	}
	files := []npyFile{
		{"items_weights.npy", "<f4", []int{in.N, m}, f32Bytes(ws)},
		{"items_lengths.npy", "<i8", []int{in.N}, i64Bytes(lens)},
		{"queries_points.npy", "<f4", []int{nq, qm, d}, f32Bytes(qp)},
		{"queries_weights.npy", "<f4", []int{nq, qm}, f32Bytes(qw)},
		{"queries_lengths.npy", "<i8", []int{nq}, i64Bytes(qlens)},
		{"truth.npy", "<i8", []int{nq, k}, i64Bytes(truth)},
	}
	firstDim, firstMetric := 0, ""
	if in.Collection.Dim > 0 {
		fs, err := ComputeFirstStage(in.Collection, item, in.N, in.Queries)
		if err != nil {
			return err
		}
		firstDim, firstMetric = fs.Dim, fs.Metric
		files = append(files,
			npyFile{"first_stage_items.npy", "<f4", []int{in.N, fs.Dim}, f32Bytes(fs.Items)},
			npyFile{"first_stage_queries.npy", "<f4", []int{nq, fs.Dim}, f32Bytes(fs.Queries)})
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
	cfg := map[string]any{"norm": in.Norm.String(), "score": in.Score.String(), "maxsim": in.Kernel.IsMaxSim(), "raw_points": in.RawPoints, "candidates": in.Candidates, "first_stage_dim": firstDim, "first_stage_metric": firstMetric}
	var terms []term
	for _, t := range in.Kernel.Terms {
		terms = append(terms, term{t.Kind.String(), t.Alpha, t.Param})
	}
	cfg["terms"] = terms
	js, _ := json.Marshal(cfg)
	return os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644)
}

// Peers locates the peer programs. The zero value of each field picks its
// default. Peers are run one after the other, never beside wpcdb or each
// other, each on one thread (see the scripts).
type Peers struct {
	// Python is the interpreter of bench/peers.py (default /usr/bin/python3,
	// Debian's, which has python3-hnswlib and python3-faiss).
	Python string
	// PythonScript is bench/peers.py (default: bench/peers.py, relative to
	// the working directory, i.e. the repository root).
	PythonScript string
	// Node is the node binary (default: "node" on PATH).
	Node string
	// NodeDir holds bench/peers-node: peers.js, package.json and the
	// node_modules that bench/install-peers.sh installs (default
	// bench/peers-node).
	NodeDir string
	// Timeout bounds each peer program (peers.js, peers.py; 0: none): one
	// still running then is killed, the runs it printed are kept, and the
	// peers it had not finished are listed as skipped, timed out (LanceDB's
	// multivector search over a colbert collection of 20,000 documents, 3.6M
	// vectors, did not finish within a run here).
	Timeout time.Duration
}

// command is exec.CommandContext under p.Timeout, and the reason a failure
// of the program is given when the timeout killed it ("" otherwise).
func (p Peers) command(ctx context.Context, name string, args ...string) (*exec.Cmd, func() string, context.CancelFunc) {
	cancel := context.CancelFunc(func() {})
	if p.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
	}
	timedOut := func() string {
		if p.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Sprintf("did not finish within --peer-timeout %s (killed)", p.Timeout)
		}
		return ""
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 10 * time.Second // a killed program's pipes are not waited on for ever
	return cmd, timedOut, cancel
}

// Names of the peers in report.json's "skipped".
const (
	peerPython  = "python-pipelines"
	peerUSearch = "usearch"
	peerLanceDB = "lancedb-maxsim"
)

func (p Peers) withDefaults() Peers {
	if p.Python == "" {
		p.Python = "/usr/bin/python3"
	}
	if p.PythonScript == "" {
		p.PythonScript = filepath.Join("bench", "peers.py")
	}
	if p.Node == "" {
		p.Node = "node"
	}
	if p.NodeDir == "" {
		p.NodeDir = filepath.Join("bench", "peers-node")
	}
	return p
}

// RunPeers runs the node peers (usearch over wpcdb's first-stage vectors;
// LanceDB multivector MaxSim for maxsim workloads) and then the Python ones
// (bench/peers.py, which also reranks usearch's candidates exactly) on the
// export in dir, and returns their runs and the peers it skipped, with why.
// A missing interpreter, script or module is a skip, not an error.
func RunPeers(ctx context.Context, p Peers, dir string) ([]Measurement, map[string]string, error) {
	p = p.withDefaults()
	skipped := map[string]string{}
	var runs []Measurement
	cfg, err := readExportConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	// usearch first: bench/peers.py reranks the candidates it leaves in dir
	// (and must not find a previous run's).
	if err := os.Remove(filepath.Join(dir, "usearch_candidates.jsonl")); err != nil && !os.IsNotExist(err) {
		return nil, nil, err
	}
	nodeRuns, err := p.runNode(ctx, dir, cfg, skipped)
	if err != nil {
		return nil, nil, err
	}
	runs = append(runs, nodeRuns...)
	pyRuns, err := p.runPython(ctx, dir, skipped)
	if err != nil {
		return nil, nil, err
	}
	return append(runs, pyRuns...), skipped, nil
}

type exportConfig struct {
	MaxSim        bool `json:"maxsim"`
	FirstStageDim int  `json:"first_stage_dim"`
}

func readExportConfig(dir string) (exportConfig, error) {
	var cfg exportConfig
	js, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return cfg, fmt.Errorf("bench: peers export: %w", err)
	}
	if err := json.Unmarshal(js, &cfg); err != nil {
		return cfg, fmt.Errorf("bench: peers export config.json: %w", err)
	}
	return cfg, nil
}

const installHint = "run bench/install-peers.sh"

// runNode runs bench/peers-node/peers.js for the node peers that apply to
// the workload and have their modules installed.
func (p Peers) runNode(ctx context.Context, dir string, cfg exportConfig, skipped map[string]string) ([]Measurement, error) {
	var want []string
	if cfg.FirstStageDim > 0 {
		want = append(want, peerUSearch)
	} else {
		skipped[peerUSearch] = "no first-stage vectors in the export"
	}
	if cfg.MaxSim {
		want = append(want, peerLanceDB)
	} else {
		skipped[peerLanceDB] = "LanceDB's multivector search is MaxSim only: runs with --kernel maxsim"
	}
	if len(want) == 0 {
		return nil, nil
	}
	skipAll := func(why string) {
		for _, name := range want {
			skipped[name] = why
		}
	}
	node, err := exec.LookPath(p.Node)
	if err != nil {
		skipAll(fmt.Sprintf("node not found (%v); %s", err, installHint))
		return nil, nil
	}
	script := filepath.Join(p.NodeDir, "peers.js")
	if _, err := os.Stat(script); err != nil {
		skipAll(fmt.Sprintf("%s not found: run from the repository root", script))
		return nil, nil
	}
	modules := map[string][]string{
		peerUSearch: {"usearch"},
		peerLanceDB: {"@lancedb/lancedb", "apache-arrow"},
	}
	var args []string
	for _, name := range want {
		missing := ""
		for _, m := range modules[name] {
			if _, err := os.Stat(filepath.Join(p.NodeDir, "node_modules", m, "package.json")); err != nil {
				missing = m
				break
			}
		}
		if missing != "" {
			skipped[name] = fmt.Sprintf("npm module %s is not installed in %s; %s", missing, p.NodeDir, installHint)
			continue
		}
		args = append(args, "--"+name)
	}
	if len(args) == 0 {
		return nil, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cmd, timedOut, cancel := p.command(ctx, node, append([]string{"peers.js", abs}, args...)...)
	defer cancel()
	cmd.Dir = p.NodeDir
	// One thread for LanceDB's compute pools (its Rust runtime reads these
	// when the module loads); usearch takes its thread count per call.
	// LANCE_IO_THREADS stays unset: at 1, LanceDB 0.31.0 deadlocks while
	// building an index (measured here). The runs' cpu_per_wall shows what
	// was really used.
	cmd.Env = append(os.Environ(), "LANCE_CPU_THREADS=1", "TOKIO_WORKER_THREADS=1", "RAYON_NUM_THREADS=1")
	return runPeerProgram(cmd, "peers.js", func(why string) {
		if t := timedOut(); t != "" {
			why = t + "; " + why
		}
		for _, a := range args {
			skipped[strings.TrimPrefix(a, "--")] = why
		}
	}, skipped, parseMeasurement)
}

// runPython runs bench/peers.py.
func (p Peers) runPython(ctx context.Context, dir string, skipped map[string]string) ([]Measurement, error) {
	if _, err := os.Stat(p.Python); err != nil {
		skipped[peerPython] = p.Python + " not found; install python3-numpy, python3-hnswlib, python3-faiss (" + installHint + ")"
		return nil, nil
	}
	if _, err := os.Stat(p.PythonScript); err != nil {
		skipped[peerPython] = p.PythonScript + " not found: run from the repository root"
		return nil, nil
	}
	cmd, timedOut, cancel := p.command(ctx, p.Python, p.PythonScript, dir)
	defer cancel()
	return runPeerProgram(cmd, "peers.py", func(why string) {
		if t := timedOut(); t != "" {
			why = t + "; " + why
		}
		skipped[peerPython] = why
	}, skipped, parseMeasurement)
}

// runPeerProgram runs a peer program that prints one JSON object per line:
// a run, or {"skipped": name, "reason": why}. parse reads a line that is
// not a skip into a run (ok false: the line is not one). When the program
// fails, the runs it completed before failing are kept and fail is told
// why (the last line of its stderr), so the peers it did not finish are
// listed as skipped.
func runPeerProgram[T any](cmd *exec.Cmd, name string, fail func(why string), skipped map[string]string, parse func(line []byte) (run T, ok bool, err error)) ([]T, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var runs []T
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var skip struct {
			Skipped string `json:"skipped"`
			Reason  string `json:"reason"`
		}
		var (
			run T
			ok  bool
		)
		err := json.Unmarshal(sc.Bytes(), &skip)
		if err == nil && skip.Skipped == "" {
			run, ok, err = parse(sc.Bytes())
		}
		if err != nil {
			if runErr != nil {
				break // a line cut short by the failure
			}
			return nil, fmt.Errorf("bench: %s printed %q: %w", name, sc.Text(), err)
		}
		if skip.Skipped != "" {
			skipped[skip.Skipped] = skip.Reason
			continue
		}
		if ok {
			runs = append(runs, run)
		}
	}
	if runErr != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		fail(fmt.Sprintf("%s failed after %d runs: %v: %s", name, len(runs), runErr, msg))
		return runs, nil
	}
	return runs, sc.Err()
}

// parseMeasurement reads a search peer's run.
func parseMeasurement(line []byte) (Measurement, bool, error) {
	var m Measurement
	err := json.Unmarshal(line, &m)
	m.Peer = true
	return m, true, err
}

// npyFile is one array of the export: its file name, NumPy dtype descr,
// shape and little-endian data.
type npyFile struct {
	name  string
	descr string
	shape []int
	data  []byte
}

func writeRawNPY(path, descr string, shape []int, data []byte) error {
	return writeNPY(path, descr, shape, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeNPY writes an .npy file of the given shape whose data body writes,
// through a buffer, so that a caller can stream rows it does not hold.
func writeNPY(path, descr string, shape []int, body func(w io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := npy.WriteHeader(w, descr, shape); err != nil {
		return err
	}
	if err := body(w); err != nil {
		return err
	}
	return w.Flush()
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
