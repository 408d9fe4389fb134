package storage

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func scanAll(t *testing.T, c *Coll, after string, limit int) []string {
	t.Helper()
	var ids []string
	err := c.ScanIDs(after, func(id string, iid uint32) (bool, error) {
		ids = append(ids, id)
		return len(ids) < limit, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestScanIDsAndUpdateAttrs checks the ID scan's order and cursor, and that
// UpdateAttrs changes the filter bitmaps, keeps the cloud, and survives a
// reopen (the bitmaps are rebuilt from the postings it wrote).
func TestScanIDsAndUpdateAttrs(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateCollection("c", collconfig.Config{Dim: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ws []ItemWrite
	for _, id := range []string{"b", "a", "c", "ab"} {
		ws = append(ws, ItemWrite{ID: id, Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}},
			Attrs: map[string]any{"color": "red", "year": 2020.0}})
	}
	if _, err := c.Write(ws); err != nil {
		t.Fatal(err)
	}
	if got := scanAll(t, c, "", 100); !slices.Equal(got, []string{"a", "ab", "b", "c"}) {
		t.Fatalf("scan = %v", got)
	}
	if got := scanAll(t, c, "a", 2); !slices.Equal(got, []string{"ab", "b"}) {
		t.Fatalf("scan after a, 2 = %v", got)
	}
	attrs, err := c.UpdateAttrs("b", map[string]any{"color": "blue", "new": true}, []string{"year", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(attrs) != "map[color:blue new:true]" {
		t.Fatalf("attrs after update = %v", attrs)
	}
	if _, err := c.UpdateAttrs("zz", nil, []string{"year"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of an unknown id: %v, want ErrNotFound", err)
	}
	if _, err := c.UpdateAttrs("a", map[string]any{"year": 1.0}, []string{"year"}); !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("set and unset of one name: %v, want ErrInvalidItem", err)
	}
	check := func(when string) {
		iid, _, _ := c.Lookup("b")
		if c.Equal("color", "red").Contains(iid) || !c.Equal("color", "blue").Contains(iid) || !c.Equal("new", true).Contains(iid) {
			t.Errorf("%s: string/bool bitmaps do not follow the update", when)
		}
		if n := c.Range("year", 2020, 2020, false, false).GetCardinality(); n != 3 {
			t.Errorf("%s: year = 2020 matches %d items, want 3", when, n)
		}
		it, err := c.Get("b")
		if err != nil || len(it.Cloud.Points) != 2 || it.Attrs["color"] != "blue" {
			t.Errorf("%s: get b = %+v, %v", when, it, err)
		}
	}
	check("before reopen")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if c, err = st.Collection("c"); err != nil {
		t.Fatal(err)
	}
	check("after reopen")
}
