package storage

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
)

// failTablesFS fails the creation of bulk tables while fail is set.
type failTablesFS struct {
	vfs.FS
	fail *atomic.Bool
}

var errInjected = errors.New("injected create failure")

func (fs failTablesFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.Contains(name, ingestPrefix) && fs.fail.Load() {
		return nil, errInjected
	}
	return fs.FS.Create(name, c)
}

// TestStagedTablesFail: a bulk write committed, then two staged one
// after the other whose tables cannot be created. Both fail with the
// cause (the second because of its own tables or of the write before it,
// whichever comes first; they may be in one commit group), each Wait
// returns, nothing of them is visible, and the next write builds on the
// first.
func TestStagedTablesFail(t *testing.T) {
	// Its records (64 points each) make a write bulk; its small keys
	// (under 2,000 bytes) go through the log.
	fs := failTablesFS{FS: vfs.NewMem(), fail: new(atomic.Bool)}
	s, err := Open("db", &Options{FS: fs, BulkWriteBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.CreateCollection("c", collconfig.Config{Dim: 2}.WithDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(bigItems("a", 4)); err != nil {
		t.Fatal(err)
	}
	fs.fail.Store(true)
	var ps []*PendingWrite
	for _, prefix := range []string{"b", "c"} {
		p, err := c.Stage(bigItems(prefix, 4), nil)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		if _, err := p.Wait(); !errors.Is(err, errInjected) {
			t.Fatalf("staged write %d: %v, want the injected failure", i, err)
		}
	}
	fs.fail.Store(false)
	if c.Count() != 4 {
		t.Fatalf("%d items, want the first write's 4", c.Count())
	}
	for _, id := range []string{"b000", "c003"} {
		if _, err := c.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want not found", id, err)
		}
	}
	iids, err := c.Write(bigItems("d", 2))
	if err != nil || len(iids) != 2 || iids[0] != 4 || iids[1] != 5 {
		t.Fatalf("next write: %v %v, want internal IDs 4 and 5", iids, err)
	}
	if got := recordIIDs(t, c); len(got) != 6 {
		t.Errorf("records %v, want 6", got)
	}
}

// bigItems are n items of 64 points each (bulkItems' with more points).
func bigItems(prefix string, n int) []ItemWrite {
	ws := bulkItems(prefix, n, 1)
	for i := range ws {
		ws[i].Cloud.Weights = make([]float32, 64)
		ws[i].Cloud.Points = make([]float32, 2*64)
		for j := range 64 {
			ws[i].Cloud.Weights[j] = float32(i + j + 1)
			ws[i].Cloud.Points[2*j] = 1
		}
	}
	return ws
}
