package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/encoder"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/demodata"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func (a *app) demoCommand() *cobra.Command {
	var queries int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Load real images as weighted point clouds, search them, and measure",
		Long: `demo runs wpcdb end to end on a small real dataset bundled with the binary: 3,000
Fashion-MNIST training images, each encoded as a weighted point cloud of image
patches (the patch encoder), ingested into an embedded database; then searches
with test images (one filtered by class), and finally recall@10 and speed of the
two-stage search against the exact scan, one thread. The database lives in a
temporary directory unless --data is given.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := a.g.data
			if !cmd.Flags().Changed("data") {
				tmp, err := os.MkdirTemp("", "wpcdb-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			return a.runDemo(cmd.Context(), dir, queries)
		},
	}
	cmd.Flags().IntVar(&queries, "queries", 100, "test images used to measure recall and speed (at most 100)")
	return cmd
}

func (a *app) runDemo(ctx context.Context, dir string, queries int) error {
	out := a.stdout
	train, test, err := demodata.FashionMNIST()
	if err != nil {
		return err
	}
	queries = max(1, min(queries, len(test.Pixels)))
	// The setting the fmnist-knn validation grid chose (the fmnist bench
	// workload's patches): 7×7 patches, a strong position term, raw
	// points, gaussian(4), cosine.
	enc, err := encoder.NewPatch(bench.FMNISTKernelSetting.Patch, nil)
	if err != nil {
		return err
	}
	encode := func(id string, pix []byte) (wpcsim.Cloud, error) {
		return enc.Encode(encoder.Input{ID: id, Data: encoder.ImageFromBytes(28, 28, pix)})
	}
	sim := bench.FMNISTPatchSimilarity()
	cfg := wpcdb.CollectionConfig{Dim: enc.Dim(), Similarity: sim}
	fmt.Fprintf(out, "wpcdb demo: %d Fashion-MNIST images as clouds of %d×%d-pixel patches (points of dimension %d, weighted by ink)\n",
		len(train.Pixels), enc.Options().Size, enc.Options().Size, enc.Dim())
	fmt.Fprintf(out, "kernel %s on raw points, score %s, database in %s\n\n", sim.Kernel, sim.Score, dir)

	db, err := wpcdb.Open(dir, &wpcdb.Options{Parallelism: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Collection("fmnist")
	if err != nil {
		if c, err = db.CreateCollection(ctx, "fmnist", cfg); err != nil {
			return err
		}
	}
	start := time.Now()
	bar := a.progress(int64(len(train.Pixels)), "ingest")
	// The ingest pipeline: images are encoded on one goroutine while the
	// previous batch is committed.
	const batch = 500
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan ingest.Batch, 1)
	go func() {
		defer close(batches)
		for lo := 0; lo < len(train.Pixels); lo += batch {
			var b ingest.Batch
			for i := lo; i < min(lo+batch, len(train.Pixels)); i++ {
				cl, err := encode(strconv.Itoa(i), train.Pixels[i])
				if err != nil {
					ingest.Send(ctx, batches, ingest.Batch{Err: err})
					return
				}
				label := train.Labels[i]
				b.Items = append(b.Items, wpcdb.Item{ID: fmt.Sprintf("train-%04d", i), Cloud: cl,
					Attrs: map[string]any{"class": demodata.Classes[label], "label": float64(label)}})
				b.Pos = append(b.Pos, i)
			}
			if !ingest.Send(ctx, batches, b) {
				return
			}
		}
	}()
	_, err = ingest.Commit(ctx, c, batches, ingest.Options{Unit: "image", Progress: func(st ingest.Stats) {
		if bar != nil {
			bar.Set(st.Committed)
		}
	}})
	if err != nil {
		return err
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	if err := c.LoadDone(ctx); err != nil { // the first stage calibrates
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(out, "ingested %d items in %.2f s (%.0f items/s), durable on disk\n", c.Count(), secs, float64(c.Count())/secs)

	labelOf := func(id string) string {
		i, _ := strconv.Atoi(id[len("train-"):])
		return demodata.Classes[train.Labels[i]]
	}
	show := func(title string, res wpcdb.SearchResult) {
		fmt.Fprintf(out, "\n%s\n", title)
		for i, h := range res.Hits {
			fmt.Fprintf(out, "  %d. %-11s %-12s cosine %.4f\n", i+1, h.ID, labelOf(h.ID), h.Score)
		}
		s := res.Stats
		fmt.Fprintf(out, "  (%s: %d items pass, %d candidates reranked exactly, %.2f ms)\n", s.Plan, s.Passing, s.Reranked, s.TotalMs)
	}
	for _, j := range []int{0, 1} {
		q, err := encode("q", test.Pixels[j])
		if err != nil {
			return err
		}
		res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5})
		if err != nil {
			return err
		}
		show(fmt.Sprintf("search: test image %d (%s), top 5", j, demodata.Classes[test.Labels[j]]), res)
	}
	q, _ := encode("q", test.Pixels[0])
	filter := `class IN ("Sandal", "Sneaker")`
	res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5, Filter: filter})
	if err != nil {
		return err
	}
	show(fmt.Sprintf("filtered search: test image 0, --filter '%s'", filter), res)

	// Recall and speed against the exact scan, one thread, same queries.
	var exactSecs, fastSecs float64
	var found, total, exactRight, fastRight int
	for j := 0; j < queries; j++ {
		q, err := encode("q", test.Pixels[j])
		if err != nil {
			return err
		}
		t0 := time.Now()
		exact, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Exact: true})
		if err != nil {
			return err
		}
		exactSecs += time.Since(t0).Seconds()
		t0 = time.Now()
		fast, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10})
		if err != nil {
			return err
		}
		fastSecs += time.Since(t0).Seconds()
		got := map[string]bool{}
		for _, h := range fast.Hits {
			got[h.ID] = true
		}
		for _, h := range exact.Hits {
			if got[h.ID] {
				found++
			}
			total++
		}
		want := demodata.Classes[test.Labels[j]]
		if vote(exact.Hits, labelOf) == want {
			exactRight++
		}
		if vote(fast.Hits, labelOf) == want {
			fastRight++
		}
	}
	fmt.Fprintf(out, "\n%d test queries, k = 10, one thread:\n", queries)
	fmt.Fprintf(out, "  exact scan of all %d items: %7.1f queries/s, 10-NN class vote accuracy %.2f\n", c.Count(), float64(queries)/exactSecs, float64(exactRight)/float64(queries))
	fmt.Fprintf(out, "  two-stage search (default): %7.1f queries/s (%.1f× the exact scan), recall@10 %.3f, accuracy %.2f\n",
		float64(queries)/fastSecs, exactSecs/fastSecs, float64(found)/float64(total), float64(fastRight)/float64(queries))
	return nil
}

// vote returns the most common class among the hits (ties: the one whose
// best hit ranks first).
func vote(hits []wpcdb.Hit, classOf func(string) string) string {
	count := map[string]int{}
	best, bestN := "", 0
	for _, h := range hits {
		cl := classOf(h.ID)
		count[cl]++
		if count[cl] > bestN {
			best, bestN = cl, count[cl]
		}
	}
	return best
}
