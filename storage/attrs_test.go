package storage

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestAttrsLoadedOnFirstFilter: reopening does not read the postings;
// writes and deletes made before the first filter are in its bitmaps.
func TestAttrsLoadedOnFirstFilter(t *testing.T) {
	fs := vfs.NewMem()
	s, c := openSmallPages(t, fs, 0)
	for i := range 4 {
		c.Write([]ItemWrite{{ID: fmt.Sprint(i), Cloud: cloud2(1), Attrs: map[string]any{"k": "a", "n": float64(i)}}})
	}
	s.Close()
	s, c = openSmallPages(t, fs, 0)
	defer s.Close()
	if c.attrsLoaded || c.Count() != 4 {
		t.Fatalf("after reopening: attributes loaded %t, count %d", c.attrsLoaded, c.Count())
	}
	c.Write([]ItemWrite{{ID: "1", Cloud: cloud2(1), Attrs: map[string]any{"k": "b", "n": float64(-1)}}})
	c.Delete([]string{"2"})
	if got := c.Equal("k", "a").ToArray(); !slices.Equal(got, []uint32{0, 3}) {
		t.Fatalf(`k = "a": %v, want [0 3]`, got)
	}
	if got := c.Range("n", -5, 0, false, false).ToArray(); !slices.Equal(got, []uint32{0, 1}) {
		t.Fatalf("n in [-5, 0]: %v, want [0 1]", got)
	}
	c.Write([]ItemWrite{{ID: "3", Cloud: cloud2(1), Attrs: map[string]any{"k": "b"}}})
	if got := c.Equal("k", "b").ToArray(); !slices.Equal(got, []uint32{1, 3}) {
		t.Fatalf(`k = "b" after a write: %v, want [1 3]`, got)
	}
}
