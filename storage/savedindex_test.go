package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func openSmallPages(t *testing.T, fs vfs.FS, pageBytes int) (*Store, *Coll) {
	t.Helper()
	s, err := Open("db", &Options{FS: fs, IndexPageBytes: pageBytes})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Collection("c")
	if errors.Is(err, ErrCollectionNotFound) {
		c, err = s.CreateCollection("c", collconfig.Config{Dim: 2}, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// saveBlobs saves blobs through streamed writes of odd sizes.
func saveBlobs(t *testing.T, c *Coll, epoch uint64, names []string, blobs map[string][]byte) {
	t.Helper()
	save, err := c.BeginIndexSave()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		w, err := save.CreateBlob(n)
		if err != nil {
			t.Fatal(err)
		}
		for b := blobs[n]; len(b) > 0; {
			k := min(len(b), 1+len(b)%37)
			if _, err := w.Write(b[:k]); err != nil {
				t.Fatal(err)
			}
			b = b[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := save.Commit(epoch); err != nil {
		t.Fatal(err)
	}
}

// readBlobs reads every saved blob back through small reads.
func readBlobs(c *Coll) (map[string][]byte, uint64, error) {
	saved, err := c.OpenSavedIndex()
	if err != nil || saved == nil {
		return nil, 0, err
	}
	defer saved.Close()
	out := map[string][]byte{}
	for _, n := range saved.Blobs() {
		r, size, err := saved.OpenBlob(n)
		if err != nil {
			return nil, 0, err
		}
		var buf bytes.Buffer
		if _, err := io.CopyBuffer(&buf, struct{ io.Reader }{r}, make([]byte, 13)); err != nil {
			return nil, 0, err
		}
		if int64(buf.Len()) != size {
			return nil, 0, fmt.Errorf("blob %q: read %d bytes, size %d", n, buf.Len(), size)
		}
		out[n] = buf.Bytes()
	}
	return out, saved.Epoch, nil
}

// pageValues returns the saved-index page keys and values of collection c.
func pageValues(t *testing.T, s *Store, c *Coll) (keys, values [][]byte) {
	t.Helper()
	p := collKey(c.cid, subIndexPage)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		keys = append(keys, bytes.Clone(it.Key()))
		values = append(values, bytes.Clone(it.Value()))
	}
	return keys, values
}

// TestSavedIndexPages: blobs of every length around the page size read
// back whole, each page value is at most a page plus its checksum, a second
// save replaces the first's pages, and a damaged or missing page is an
// ErrCorrupt read error.
func TestSavedIndexPages(t *testing.T) {
	const seed, pageBytes = 5, 64
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewMem()
	s, c := openSmallPages(t, fs, pageBytes)
	defer func() { s.Close() }()
	names := []string{"empty", "one", "page", "page+1", "big"}
	blobs := map[string][]byte{}
	for i, size := range []int{0, 1, pageBytes, pageBytes + 1, 20*pageBytes + 7} {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		blobs[names[i]] = b
	}
	saveBlobs(t, c, 3, names, blobs)
	got, epoch, err := readBlobs(c)
	if err != nil {
		t.Fatal(err)
	}
	if epoch != 3 || len(got) != len(blobs) {
		t.Fatalf("epoch %d, %d blobs; want 3, %d", epoch, len(got), len(blobs))
	}
	for n, b := range blobs {
		if !bytes.Equal(got[n], b) {
			t.Fatalf("blob %q: read %d bytes differing from the %d saved", n, len(got[n]), len(b))
		}
	}
	keys, values := pageValues(t, s, c)
	if len(keys) != 0+1+1+2+21 {
		t.Fatalf("%d pages, want 25", len(keys))
	}
	for i, v := range values {
		if len(v) > pageBytes+4 {
			t.Fatalf("page %x: %d bytes", keys[i], len(v))
		}
	}

	// A second save replaces the pages of the first.
	saveBlobs(t, c, 4, []string{"one"}, map[string][]byte{"one": {42}})
	if keys, _ := pageValues(t, s, c); len(keys) != 1 {
		t.Fatalf("%d pages after the second save, want 1", len(keys))
	}
	saveBlobs(t, c, 5, names, blobs)

	// An aborted save leaves the saved index as it was; the next save
	// removes its pages.
	save, _ := c.BeginIndexSave()
	save.PutBlob("big", bytes.Repeat([]byte{1}, 10*saveBatchBytes/pageBytes))
	save.Abort()
	if got, epoch, err := readBlobs(c); err != nil || epoch != 5 || !bytes.Equal(got["big"], blobs["big"]) {
		t.Fatalf("after an aborted save: epoch %d, %v", epoch, err)
	}
	saveBlobs(t, c, 6, names, blobs)
	if keys, _ := pageValues(t, s, c); len(keys) != 25 {
		t.Fatalf("%d pages after a save following an abort, want 25", len(keys))
	}

	// Every flipped byte of a page, and a missing page, is caught.
	keys, values = pageValues(t, s, c)
	for i := range keys {
		v := bytes.Clone(values[i])
		v[rng.IntN(len(v))] ^= 1 << rng.IntN(8)
		s.db.Set(keys[i], v, pebble.Sync)
		if _, _, err := readBlobs(c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("page %x damaged: %v, want ErrCorrupt", keys[i], err)
		}
		s.db.Delete(keys[i], pebble.Sync)
		if _, _, err := readBlobs(c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("page %x missing: %v, want ErrCorrupt", keys[i], err)
		}
		s.db.Set(keys[i], values[i], pebble.Sync)
	}
	if _, _, err := readBlobs(c); err != nil {
		t.Fatal(err)
	}

	// A damaged header is an error, and the next save starts over.
	hk := collKey(c.cid, subIndexHead)
	h, closer, _ := s.db.Get(hk)
	bad := bytes.Clone(h)
	closer.Close()
	bad[3] ^= 4
	s.db.Set(hk, bad, pebble.Sync)
	if _, err := c.OpenSavedIndex(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged header: %v, want ErrCorrupt", err)
	}
	saveBlobs(t, c, 7, []string{"one"}, map[string][]byte{"one": {7}})
	if got, _, err := readBlobs(c); err != nil || !bytes.Equal(got["one"], []byte{7}) {
		t.Fatalf("save after a damaged header: %v", err)
	}
	if keys, _ := pageValues(t, s, c); len(keys) != 1 {
		t.Fatalf("%d pages, want 1", len(keys))
	}
}

// TestSavedIndexDropsChangeLog: a save drops the change log up to its
// epoch and keeps later entries.
func TestSavedIndexDropsChangeLog(t *testing.T) {
	s, c := openSmallPages(t, vfs.NewMem(), 0)
	defer s.Close()
	for i := range 3 {
		if _, err := c.Write([]ItemWrite{{ID: fmt.Sprint(i), Cloud: cloud2(float32(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	saveBlobs(t, c, 2, []string{"x"}, map[string][]byte{"x": {1}})
	var changed []uint32
	c.ChangesSince(0, func(iid uint32) error { changed = append(changed, iid); return nil })
	if len(changed) != 1 || changed[0] != 2 {
		t.Fatalf("change log after a save at epoch 2: %v, want [2]", changed)
	}
}

// TestFormat1Upgrade: opening a format 1 store rewrites its saved index
// (one value per blob) in pages with its epoch, drops an unreadable one,
// and leaves everything else.
func TestFormat1Upgrade(t *testing.T) {
	fs := vfs.NewMem()
	s, c := openSmallPages(t, fs, 100)
	d, _ := s.CreateCollection("d", collconfig.Config{Dim: 2}, nil)
	if _, err := c.Write([]ItemWrite{{ID: "a", Cloud: cloud2(1)}}); err != nil {
		t.Fatal(err)
	}
	blob := bytes.Repeat([]byte{9, 8, 7}, 1000)
	s.db.Set(append(collKey(c.cid, subLegacyIndex), "hnsw"...), blob, nil)
	s.db.Set(collKey(c.cid, subLegacyIndexAt), binary.BigEndian.AppendUint64(nil, 1), nil)
	s.db.Set(append(collKey(d.cid, subLegacyIndex), "hnsw"...), blob, nil)
	s.db.Set(collKey(d.cid, subLegacyIndexAt), []byte{1, 2, 3}, nil) // damaged
	s.db.Set(versionKey, binary.BigEndian.AppendUint32(nil, 1), pebble.Sync)
	s.Close()

	s, c = openSmallPages(t, fs, 100)
	defer s.Close()
	got, epoch, err := readBlobs(c)
	if err != nil || epoch != 1 || len(got) != 1 || !bytes.Equal(got["hnsw"], blob) {
		t.Fatalf("after the upgrade: epoch %d, %d blobs, %v; want the format 1 blob at epoch 1", epoch, len(got), err)
	}
	d, _ = s.Collection("d")
	if saved, err := d.OpenSavedIndex(); saved != nil || err != nil {
		t.Fatalf("damaged format 1 index after the upgrade: %v, %v; want none", saved, err)
	}
	for _, cid := range []uint32{c.cid, d.cid} {
		for _, k := range [][]byte{append(collKey(cid, subLegacyIndex), "hnsw"...), collKey(cid, subLegacyIndexAt)} {
			if _, _, err := s.db.Get(k); !errors.Is(err, pebble.ErrNotFound) {
				t.Fatalf("format 1 key %x left: %v", k, err)
			}
		}
	}
	v, closer, _ := s.db.Get(versionKey)
	if binary.BigEndian.Uint32(v) != FormatVersion {
		t.Fatalf("version %d after the upgrade", binary.BigEndian.Uint32(v))
	}
	closer.Close()
	if it, err := c.Get("a"); err != nil || it.ID != "a" {
		t.Fatalf("item after the upgrade: %v", err)
	}
}

func cloud2(w float32) wpcsim.Cloud {
	return wpcsim.Cloud{Dim: 2, Weights: []float32{w}, Points: []float32{1, 0}}
}

// TestFormat2Upgrade: opening a format 2 store deletes its stored φ
// vectors (format 3 recomputes φ from the records) and keeps the items.
func TestFormat2Upgrade(t *testing.T) {
	fs := vfs.NewMem()
	s, c := openSmallPages(t, fs, 100)
	iids, err := c.Write([]ItemWrite{{ID: "a", Cloud: cloud2(1)}})
	if err != nil {
		t.Fatal(err)
	}
	phiKey := iidKey(c.cid, subPhi, iids[0])
	s.db.Set(phiKey, make([]byte, 24), nil)
	s.db.Set(versionKey, binary.BigEndian.AppendUint32(nil, 2), pebble.Sync)
	s.Close()

	s, c = openSmallPages(t, fs, 100)
	defer s.Close()
	if _, _, err := s.db.Get(phiKey); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("format 2 φ key left: %v", err)
	}
	v, closer, _ := s.db.Get(versionKey)
	if binary.BigEndian.Uint32(v) != 3 {
		t.Fatalf("version %d after the upgrade", binary.BigEndian.Uint32(v))
	}
	closer.Close()
	if it, err := c.Get("a"); err != nil || it.ID != "a" {
		t.Fatalf("item after the upgrade: %v", err)
	}
}
