package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Report is the content of report.json.
type Report struct {
	Workload string            `json:"workload"`
	Config   map[string]any    `json:"config"`
	Machine  map[string]any    `json:"machine"`
	Ingest   *IngestReport     `json:"ingest,omitempty"`
	Runs     []Run             `json:"runs"`
	Skipped  map[string]string `json:"skipped,omitempty"` // peer → why it did not run
}

// Write writes report.json, report.md and, when there are search runs,
// recall_qps.png into dir.
func (r Report) Write(dir string) error {
	if r.Runs == nil {
		r.Runs = []Run{}
	}
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
	keys := make([]string, 0, len(r.Config))
	for k := range r.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %v\n", k, r.Config[k])
	}
	if cpus, ok := r.Machine["cpus"]; ok {
		fmt.Fprintf(&b, "- machine: %v CPUs, %v, %v\n", cpus, r.Machine["goarch"], r.Machine["go"])
	}
	if r.Ingest != nil {
		in := r.Ingest
		fmt.Fprintf(&b, "\n## Ingest\n\n| items | seconds | items/s | points/s | MB/s | bytes/item | peak RSS MiB | threads |\n|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %d | %.2f | %.0f | %.3g | %.1f | %.0f | %d | %d |\n", in.Items, in.Seconds, in.ItemsPerSec, in.PointsPerSec, in.MBPerSec, in.BytesPerItem, in.PeakRSSBytes>>20, in.Threads)
	}
	if len(r.Runs) > 0 {
		var exactQPS float64
		for _, run := range r.Runs {
			if run.Method == "exact" {
				exactQPS = run.QPS
			}
		}
		fmt.Fprintf(&b, "\n## Search\n\n| method | params | threads | recall@k | q/s | × exact | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|---|\n")
		for _, run := range r.Runs {
			speedup := "—"
			if exactQPS > 0 {
				speedup = fmt.Sprintf("%.1f", run.QPS/exactQPS)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %.3f | %.1f | %s | %.2f | %.2f |\n", run.Method, paramString(run.Params), run.Threads, run.Recall, run.QPS, speedup, run.P50Ms, run.P99Ms)
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "\n## Skipped\n\n")
		for k, why := range r.Skipped {
			fmt.Fprintf(&b, "- %s: %s\n", k, why)
		}
	}
	return b.String()
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
	}
	for i, m := range order {
		pts := byMethod[m]
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		line, scatter, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := palette[i%len(palette)]
		line.Color, scatter.Color = c, c
		scatter.Shape = draw.CircleGlyph{}
		p.Add(line, scatter)
		p.Legend.Add(m, line, scatter)
	}
	p.X.Min = max(0, minRecall-0.05)
	p.X.Max = 1.005
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
