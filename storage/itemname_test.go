package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCorruptItemNamedByID: a stored record or attribute set that does not
// decode is ErrCorrupt naming the item by its ID when its record's head
// is readable, and by its internal number when that is damaged too.
func TestCorruptItemNamedByID(t *testing.T) {
	fs := vfs.NewMem()
	s, c := openSmallPages(t, fs, 100)
	iids, err := c.Write([]ItemWrite{{ID: "the-item", Cloud: cloud2(1), Attrs: map[string]any{"k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	iid := iids[0]
	rkey := iidKey(c.cid, subRecord, iid)
	v, closer, err := s.db.Get(rkey)
	if err != nil {
		t.Fatal(err)
	}
	cut := append([]byte(nil), v[:len(v)-3]...) // the cloud cut short, the ID whole
	closer.Close()
	s.db.Set(rkey, cut, pebble.Sync)
	s.db.Set(iidKey(c.cid, subAttrs, iid), []byte{0xff, 0xff, 0xff}, pebble.Sync)
	s.Close()

	s, c = openSmallPages(t, fs, 100)
	defer s.Close()
	named := `item "the-item" (internal id `
	if _, err := c.ReadCloud(iid, nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), named) {
		t.Errorf("ReadCloud of a cut record: %v, want ErrCorrupt naming %s", err, named)
	}
	if err := c.ScanRecords(func(uint32, Record) error { return nil }); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), named) {
		t.Errorf("ScanRecords over a cut record: %v, want ErrCorrupt naming %s", err, named)
	}
	if _, err := c.Attrs(iid); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), named) {
		t.Errorf("Attrs that do not decode: %v, want ErrCorrupt naming %s", err, named)
	}
	s.db.Set(rkey, []byte{0x7f}, pebble.Sync) // not even the record's version
	if _, err := c.ReadCloud(iid, nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "item with internal id ") {
		t.Errorf("ReadCloud of a record without its ID: %v, want ErrCorrupt naming the internal id", err)
	}
}
