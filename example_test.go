package wpcdb_test

import (
	"context"
	"fmt"
	"os"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Embedding wpcdb: open a directory, create a collection with the paper's
// similarity, upsert clouds and search them.
func Example() {
	dir, _ := os.MkdirTemp("", "wpcdb-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := wpcdb.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	// Dimension 3, kernel 0.667*linear+0.333*gaussian(0.5), mean
	// normalization, score "inner" (every other setting has a default).
	c, err := db.CreateCollection(ctx, "shapes", wpcdb.CollectionConfig{Dim: 3})
	if err != nil {
		panic(err)
	}
	cloud := func(weights []float32, points ...[]float32) wpcsim.Cloud {
		c := wpcsim.Cloud{Dim: 3, Weights: weights}
		for _, p := range points {
			c.Points = append(c.Points, p...)
		}
		return c
	}
	err = c.Upsert(ctx, []wpcdb.Item{
		{ID: "red-square", Cloud: cloud([]float32{2, 1}, []float32{1, 0, 0}, []float32{0.9, 0.1, 0}), Attrs: map[string]any{"color": "red"}},
		{ID: "blue-circle", Cloud: cloud([]float32{1, 1}, []float32{0, 0, 1}, []float32{0, 0.2, 1}), Attrs: map[string]any{"color": "blue"}},
		{ID: "mixed", Cloud: cloud([]float32{1, -0.5, 1}, []float32{1, 0, 0}, []float32{0, 1, 0}, []float32{0, 0, 1})},
	})
	if err != nil {
		panic(err)
	}
	query := cloud([]float32{1}, []float32{1, 0.05, 0})
	res, err := c.Search(ctx, query, wpcdb.SearchOptions{K: 2})
	if err != nil {
		panic(err)
	}
	for _, h := range res.Hits {
		fmt.Printf("%s %.4f\n", h.ID, h.Score)
	}
	// Output:
	// red-square 1.4957
	// mixed 0.3277
}
