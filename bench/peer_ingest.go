package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/npy"
)

// PeerIngest is a peer's ingest of the items wpcdb ingested, for the
// ingest table: LanceDB (bench/peers-node/peers.js --lancedb-ingest)
// writing the clouds as multivectors.
type PeerIngest struct {
	Method string         `json:"method"`
	Params map[string]any `json:"params,omitempty"`
	Items  int            `json:"items"`
	Points int64          `json:"points"`
	// Seconds is the wall time of the writes alone (the Arrow batches are
	// built before); CPUSeconds the process's CPU time over the same span,
	// every thread of it.
	Seconds           float64 `json:"seconds"`
	ItemsPerSec       float64 `json:"items_per_s"`
	CPUSeconds        float64 `json:"cpu_s"`
	ItemsPerCPUSecond float64 `json:"items_per_cpu_s"`
	BytesPerItem      float64 `json:"bytes_per_item"` // the table's files after the writes
}

// maxPeerIngestBytes bounds the points exported for the ingest peer: node
// reads them whole (1M compact items are 2.6 GB of float32).
const maxPeerIngestBytes = 1 << 30

// peerIngestName is the ingest peer's name in report.json's "skipped".
const peerIngestName = "lancedb-ingest"

// ExportItemsForIngest writes items 0..n-1 of src into dir as
// ingest_points.npy (P, dim) float32, ingest_weights.npy (P) float32 and
// ingest_lengths.npy (n) int64, the points of all items one after the
// other, for peers.js --lancedb-ingest. It refuses (before writing the
// points) an export over maxBytes of points.
func ExportItemsForIngest(dir string, src Source, n int, maxBytes int64) error {
	dim, _ := src.Shape()
	lens := make([]int64, n)
	var total int64
	for i := range n {
		it, err := src.Item(i)
		if err != nil {
			return fmt.Errorf("bench: item %d: %w", i, err)
		}
		lens[i] = int64(it.Cloud.Len())
		total += lens[i]
		if b := total * int64(dim) * 4; b > maxBytes {
			return fmt.Errorf("%w: %d items are over %d MB of float32 points, the peer export's bound", errTooBig, n, maxBytes>>20)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "ingest_points.npy"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := npy.WriteHeader(w, "<f4", []int{int(total), dim}); err != nil {
		return err
	}
	ws := make([]float32, 0, total)
	var buf []byte
	for i := range n {
		it, err := src.Item(i)
		if err != nil {
			return fmt.Errorf("bench: item %d: %w", i, err)
		}
		if int64(it.Cloud.Len()) != lens[i] {
			return fmt.Errorf("bench: item %d changed between two reads", i)
		}
		buf = buf[:0]
		for _, x := range it.Cloud.Points {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		ws = append(ws, it.Cloud.Weights...)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := writeRawNPY(filepath.Join(dir, "ingest_weights.npy"), "<f4", []int{int(total)}, f32Bytes(ws)); err != nil {
		return err
	}
	return writeRawNPY(filepath.Join(dir, "ingest_lengths.npy"), "<i8", []int{n}, i64Bytes(lens))
}

// errTooBig is an export over its bound.
var errTooBig = errors.New("bench: export too large")

// RunPeerIngest runs peers.js --lancedb-ingest on the export in dir, with
// batches of batch items, and returns its runs, or why it was skipped. It
// runs with every core (no thread limits), as wpcdb's ingest does.
func RunPeerIngest(ctx context.Context, p Peers, dir string, batch int) ([]PeerIngest, map[string]string, error) {
	p = p.withDefaults()
	skipped := map[string]string{}
	node, err := exec.LookPath(p.Node)
	if err != nil {
		skipped[peerIngestName] = fmt.Sprintf("node not found (%v); %s", err, installHint)
		return nil, skipped, nil
	}
	for _, m := range []string{"@lancedb/lancedb", "apache-arrow"} {
		if _, err := os.Stat(filepath.Join(p.NodeDir, "node_modules", m, "package.json")); err != nil {
			skipped[peerIngestName] = fmt.Sprintf("npm module %s is not installed in %s; %s", m, p.NodeDir, installHint)
			return nil, skipped, nil
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, node, "peers.js", abs, "--lancedb-ingest", fmt.Sprintf("--batch=%d", batch))
	cmd.Dir = p.NodeDir
	runs, err := runPeerProgram(cmd, "peers.js", func(why string) { skipped[peerIngestName] = why }, skipped,
		func(line []byte) (PeerIngest, bool, error) {
			var l struct {
				Ingest *PeerIngest `json:"ingest"`
			}
			if err := json.Unmarshal(line, &l); err != nil || l.Ingest == nil {
				return PeerIngest{}, false, err
			}
			return *l.Ingest, true, nil
		})
	return runs, skipped, err
}

// peerIngest measures the ingest peer on the items wpcdb just ingested
// (unless cfg.Peers is false), right after wpcdb's ingest so that both see
// the same machine, into rep.PeerIngest.
func (cfg RunConfig) peerIngest(ctx context.Context, w *workload, rep *Report) error {
	if !cfg.Peers {
		rep.skip(map[string]string{peerIngestName: "--peers=false"})
		return nil
	}
	dir := filepath.Join(cfg.Out, "peers")
	err := ExportItemsForIngest(dir, w.source, w.n, maxPeerIngestBytes)
	if errors.Is(err, errTooBig) {
		rep.skip(map[string]string{peerIngestName: err.Error()})
		return nil
	}
	if err != nil {
		return err
	}
	runs, skipped, err := RunPeerIngest(ctx, Peers{}, dir, ingest.DefaultBatch)
	for _, f := range []string{"ingest_points.npy", "ingest_weights.npy", "ingest_lengths.npy"} {
		os.Remove(filepath.Join(dir, f))
	}
	if err != nil {
		return err
	}
	for name, why := range skipped {
		fmt.Fprintf(cfg.Log, "wpcdb: peer %s skipped: %s\n", name, why)
	}
	rep.PeerIngest = runs
	rep.skip(skipped)
	return nil
}

// skip adds peers that did not run, with why, to r.Skipped.
func (r *Report) skip(why map[string]string) {
	if len(why) == 0 {
		return
	}
	if r.Skipped == nil {
		r.Skipped = map[string]string{}
	}
	maps.Copy(r.Skipped, why)
}
