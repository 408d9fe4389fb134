package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Report is the content of report.json.
type Report struct {
	Workload string         `json:"workload"`
	Config   map[string]any `json:"config"`
	Machine  map[string]any `json:"machine"`
	Ingest   *IngestReport  `json:"ingest,omitempty"`
	// PeerIngest is the peers' ingest of the same items (LanceDB).
	PeerIngest []PeerIngest      `json:"peer_ingest,omitempty"`
	Runs       []Measurement     `json:"runs"`
	Skipped    map[string]string `json:"skipped,omitempty"` // peer → why it did not run
	// Notes are what the run's figures need read beside them (the machine
	// was shared, a sweep was added from a second run), in report.md under
	// "Notes".
	Notes []string `json:"notes,omitempty"`
	// Ratios compare each peer run with wpcdb at equal recall; Write fills
	// them in from Runs (see EqualRecallRatios).
	Ratios []Ratio `json:"ratios,omitempty"`
}

// Ratio is wpcdb's speed relative to one peer run at equal recall: the
// fastest two-stage wpcdb run whose recall@k is at least the peer's.
// When no wpcdb run reaches the peer's recall, Reached is false and the
// wpcdb fields and QPSRatio are left out.
type Ratio struct {
	Peer         string         `json:"peer"` // the peer run's method
	PeerParams   map[string]any `json:"peer_params"`
	PeerRecall   float64        `json:"peer_recall_at_k"`
	PeerQPS      float64        `json:"peer_qps"`
	PeerThreads  int            `json:"peer_threads"`
	Reached      bool           `json:"reached"`
	WPCDB        string         `json:"wpcdb_method,omitempty"`
	WPCDBParams  map[string]any `json:"wpcdb_params,omitempty"`
	WPCDBRecall  float64        `json:"wpcdb_recall_at_k,omitempty"`
	WPCDBQPS     float64        `json:"wpcdb_qps,omitempty"`
	WPCDBThreads int            `json:"wpcdb_threads,omitempty"`
	QPSRatio     float64        `json:"qps_ratio,omitempty"` // wpcdb q/s ÷ peer q/s
}

// recallSlack absorbs float rounding between recalls computed as
// found/total by different programs over the same total.
const recallSlack = 1e-9

// isWPCDBSearch reports whether run is one of wpcdb's own approximate
// searches: not a peer, not the exact scan (which always reaches recall 1
// and is the reference, not a contender).
func isWPCDBSearch(run Measurement) bool {
	return !run.Peer && run.Method != "exact" && strings.HasPrefix(run.Method, "wpcdb")
}

// EqualRecallRatios returns, for each peer run in order, the fastest wpcdb
// run whose recall@k is at least the peer's and the ratio of their
// queries/s (wpcdb ÷ peer).
func EqualRecallRatios(runs []Measurement) []Ratio {
	var out []Ratio
	for _, p := range runs {
		if !p.Peer {
			continue
		}
		r := Ratio{Peer: p.Method, PeerParams: p.Params, PeerRecall: p.Recall, PeerQPS: p.QPS, PeerThreads: p.Threads}
		var best *Measurement
		for i := range runs {
			w := &runs[i]
			if isWPCDBSearch(*w) && w.Recall >= p.Recall-recallSlack && (best == nil || w.QPS > best.QPS) {
				best = w
			}
		}
		if best != nil {
			r.Reached = true
			r.WPCDB, r.WPCDBParams, r.WPCDBRecall, r.WPCDBQPS, r.WPCDBThreads = best.Method, best.Params, best.Recall, best.QPS, best.Threads
			if p.QPS > 0 {
				r.QPSRatio = best.QPS / p.QPS
			}
		}
		out = append(out, r)
	}
	return out
}

// Write writes report.json, report.md and, when there are search runs,
// recall_qps.png into dir.
func (r Report) Write(dir string) error {
	if r.Runs == nil {
		r.Runs = []Measurement{}
	}
	r.Ratios = EqualRecallRatios(r.Runs)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return err
	}
	if len(r.Runs) == 0 {
		return nil
	}
	return r.Plot(filepath.Join(dir, "recall_qps.png"))
}

// Markdown renders the report as readable tables.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# wpcdb bench: %s\n\n", r.Workload)
	for _, k := range slices.Sorted(maps.Keys(r.Config)) {
		fmt.Fprintf(&b, "- %s: %v\n", k, r.Config[k])
	}
	if cpus, ok := r.Machine["cpus"]; ok {
		fmt.Fprintf(&b, "- machine: %v CPUs, %v, %v\n", cpus, r.Machine["goarch"], r.Machine["go"])
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(&b, "\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if r.Ingest != nil {
		in := r.Ingest
		fmt.Fprintf(&b, "\n## Ingest\n\n| items | seconds | items/s | items/CPU s | items/CPU s w/o generation | points/s | MB/s | data bytes/item | × payload | bytes/item with index | first stage built (s) | peak RSS MiB (load) | threads |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %d | %.2f | %.0f | %.0f | %.0f | %.3g | %.1f | %.0f | %.2f | %.0f | %.2f | %d (%d) | %d |\n", in.Items, in.Seconds, in.ItemsPerSec, in.ItemsPerCPUSecond, in.ItemsPerStoreCPUSecond, in.PointsPerSec, in.MBPerSec,
			in.DataBytesPerItem, in.DiskPerPayload, in.BytesPerItem, in.IndexSeconds, in.PeakRSSBytes>>20, in.LoadPeakRSSBytes>>20, in.Threads)
		if len(r.PeerIngest) > 0 {
			fmt.Fprintf(&b, "\nThe same items ingested by the peers, right after wpcdb (wall time and CPU of the writes alone):\n\n| method | params | items/s | items/CPU s | seconds | CPU s | bytes/item | wpcdb ÷ peer items/s | wpcdb (w/o generation) ÷ peer items/CPU s |\n|---|---|---|---|---|---|---|---|---|\n")
			for _, p := range r.PeerIngest {
				fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f |\n", p.Method, paramString(p.Params), p.ItemsPerSec, p.ItemsPerCPUSecond, p.Seconds, p.CPUSeconds, p.BytesPerItem,
					in.ItemsPerSec/max(p.ItemsPerSec, 1e-9), in.ItemsPerStoreCPUSecond/max(p.ItemsPerCPUSecond, 1e-9))
			}
		}
	}
	if len(r.Runs) > 0 {
		var exactQPS float64
		for _, run := range r.Runs {
			if run.Method == "exact" {
				exactQPS = run.QPS
			}
		}
		fmt.Fprintf(&b, "\n## Search\n\n| method | params | threads | recall@k | q/s | × exact | p50 ms | p99 ms | cpu ms/q | 1st stage ms | rerank ms |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, run := range r.Runs {
			speedup := "—"
			if exactQPS > 0 {
				speedup = qpsCell(run.QPS / exactQPS)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %s | %s | %.2f | %.2f | %s | %s | %s |\n", run.Method, paramString(run.Params), run.Threads, run.Recall, qpsCell(run.QPS), speedup, run.P50Ms, run.P99Ms,
				msCell(run.CPUMsPerQuery), msCell(run.FirstStageMs), msCell(run.RerankMs))
		}
	}
	ratios := r.Ratios
	if ratios == nil {
		ratios = EqualRecallRatios(r.Runs)
	}
	if len(ratios) > 0 {
		fmt.Fprintf(&b, "\n## wpcdb against each peer at equal recall\n\n"+
			"For each peer run, the fastest wpcdb two-stage run whose recall@k is at least the peer's; "+
			"ratio = wpcdb q/s ÷ peer q/s (above 1: wpcdb is faster).\n\n"+
			"| peer | peer params | peer recall@k | peer q/s | wpcdb params | wpcdb recall@k | wpcdb q/s | ratio |\n|---|---|---|---|---|---|---|---|\n")
		for _, x := range ratios {
			if !x.Reached {
				fmt.Fprintf(&b, "| %s | %s | %.3f | %s | no wpcdb run reaches this recall | — | — | — |\n", x.Peer, paramString(x.PeerParams), x.PeerRecall, qpsCell(x.PeerQPS))
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %.3f | %s | %s | %.3f | %s | %.2f× |\n", x.Peer, paramString(x.PeerParams), x.PeerRecall, qpsCell(x.PeerQPS), paramString(x.WPCDBParams), x.WPCDBRecall, qpsCell(x.WPCDBQPS), x.QPSRatio)
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "\n## Skipped\n\n")
		for _, k := range slices.Sorted(maps.Keys(r.Skipped)) {
			fmt.Fprintf(&b, "- %s: %s\n", k, r.Skipped[k])
		}
	}
	return b.String()
}

// qpsCell formats queries/s (or a ratio of them): one decimal from 1 up,
// three significant digits below, where one decimal would print LanceDB's
// exhaustive multivector search (a query in two minutes) as 0.0.
func qpsCell(q float64) string {
	if q >= 1 || q == 0 {
		return fmt.Sprintf("%.1f", q)
	}
	return fmt.Sprintf("%.3g", q)
}

func paramString(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, p[k])
	}
	return strings.Join(parts, " ")
}

// Plot draws recall@k against queries/s (log scale), one curve per method.
func (r Report) Plot(path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("wpcdb bench: %s", r.Workload)
	p.X.Label.Text = "recall@k"
	p.Y.Label.Text = "queries/s (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	byMethod := map[string]plotter.XYs{}
	var order []string
	minRecall := 1.0
	for _, run := range r.Runs {
		if run.QPS <= 0 {
			continue
		}
		minRecall = min(minRecall, run.Recall)
		if _, ok := byMethod[run.Method]; !ok {
			order = append(order, run.Method)
		}
		byMethod[run.Method] = append(byMethod[run.Method], plotter.XY{X: run.Recall, Y: run.QPS})
	}
	palette := []color.Color{
		color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
		color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
		color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff},
		color.RGBA{0x17, 0xbe, 0xcf, 0xff},
	}
	// With the peers there can be more methods than colours: the glyph
	// changes too, so no two curves look alike.
	glyphs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}
	for i, m := range order {
		pts := byMethod[m]
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		line, scatter, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := palette[i%len(palette)]
		line.Color, scatter.Color = c, c
		scatter.Shape = glyphs[(i/len(palette)+i)%len(glyphs)]
		p.Add(line, scatter)
		p.Legend.Add(m, line, scatter)
	}
	p.X.Min = max(0, minRecall-0.05)
	p.X.Max = 1.005
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

// msCell is a table cell of milliseconds, "—" when not measured.
func msCell(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}
