package query

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestCorruptItemNamedInSearch: a stored record that decodes but whose
// cloud fails validation (a coordinate turned NaN on disk) fails an exact
// search as ErrCorrupt naming the item by its ID.
func TestCorruptItemNamedInSearch(t *testing.T) {
	fs := vfs.NewMem()
	st, err := storage.Open("db", &storage.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCollection("c", collconfig.Config{Dim: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const marker = 1234.5 // a coordinate found in the stored record
	if _, err := c.Write([]storage.ItemWrite{
		{ID: "fine", Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}},
		{ID: "damaged", Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{marker, 0}}},
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Turn the marker into a NaN in the raw store.
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	want := binary.LittleEndian.AppendUint32(nil, math.Float32bits(marker))
	nan := binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.NaN())))
	it, _ := db.NewIter(nil)
	found := 0
	for it.First(); it.Valid(); it.Next() {
		if v := it.Value(); bytes.Contains(v, []byte("damaged")) && bytes.Contains(v, want) {
			db.Set(bytes.Clone(it.Key()), bytes.Replace(v, want, nan, 1), pebble.Sync)
			found++
		}
	}
	it.Close()
	db.Close()
	if found != 1 {
		t.Fatalf("%d records hold the marker, want 1", found)
	}

	st, err = storage.Open("db", &storage.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err = st.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := wpcsim.New(c.Config().Similarity)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Coll: c, Sim: sim, Parallelism: 1}
	_, err = e.Search(context.Background(), Request{Query: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}, K: 2, Exact: true})
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), `stored item "damaged" (internal id `) {
		t.Errorf("exact search over a NaN record: %v, want ErrCorrupt naming \"damaged\"", err)
	}
}

// quiet is a Pebble logger that says nothing.
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic("pebble: fatal: " + format)
}
