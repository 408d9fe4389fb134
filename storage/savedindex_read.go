package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// Reading a saved index: SavedIndex and its page reader.

// SavedIndex is the collection's saved first-stage index as of when it was
// opened (a Pebble snapshot): its blobs are read page by page, and every
// page's checksum is checked before its bytes are returned. Close it.
type SavedIndex struct {
	Epoch uint64 // the write epoch the saved index reflects
	c     *Coll
	snap  *pebble.Snapshot
	head  indexHead
}

// OpenSavedIndex opens the saved index; (nil, nil) when none was saved. A
// damaged header is an error wrapping ErrCorrupt.
func (c *Coll) OpenSavedIndex() (*SavedIndex, error) {
	if err := c.checkLive(); err != nil {
		return nil, err
	}
	snap := c.store.db.NewSnapshot()
	h, ok, err := readIndexHead(snap, c.cid)
	if err != nil || !ok {
		snap.Close()
		if err != nil {
			err = fmt.Errorf("collection %q: %w", c.name, err)
		}
		return nil, err
	}
	return &SavedIndex{Epoch: h.epoch, c: c, snap: snap, head: h}, nil
}

// Close releases the snapshot.
func (s *SavedIndex) Close() error { return s.snap.Close() }

// PutBlob fails: a saved index is read-only (see BeginIndexSave).
func (s *SavedIndex) PutBlob(name string, data []byte) error {
	return errors.New("storage: a saved index is read-only")
}

// CreateBlob fails: a saved index is read-only.
func (s *SavedIndex) CreateBlob(name string) (io.WriteCloser, error) {
	return nil, errors.New("storage: a saved index is read-only")
}

// Blobs returns the names of the saved blobs, in the order they were
// written.
func (s *SavedIndex) Blobs() []string {
	out := make([]string, len(s.head.blobs))
	for i, b := range s.head.blobs {
		out[i] = b.name
	}
	return out
}

// GetBlob reads a whole blob; (nil, nil) when absent.
func (s *SavedIndex) GetBlob(name string) ([]byte, error) {
	r, size, err := s.OpenBlob(name)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.Close()
	out := make([]byte, size)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// OpenBlob returns a reader of the blob and its size; (nil, 0, nil) when
// absent. A missing or damaged page is a read error wrapping ErrCorrupt.
func (s *SavedIndex) OpenBlob(name string) (io.ReadCloser, int64, error) {
	for i, b := range s.head.blobs {
		if b.name == name {
			return &pageReader{s: s, blob: uint8(i), info: b}, int64(b.size), nil
		}
	}
	return nil, 0, nil
}

// pageReader reads a blob's pages in order.
type pageReader struct {
	s    *SavedIndex
	blob uint8
	info blobInfo
	page uint32 // the next page to read
	buf  []byte // unread bytes of the current page
	own  []byte
	err  error
}

func (r *pageReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 && r.err == nil {
		r.err = r.next()
	}
	if len(r.buf) == 0 {
		return 0, r.err
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// next reads and checks the next page.
func (r *pageReader) next() error {
	if r.page == r.info.pages {
		return io.EOF
	}
	pb := uint64(r.s.head.pageBytes)
	want := min(pb, r.info.size-uint64(r.page)*pb)
	c := r.s.c
	bad := func(what string) error {
		return fmt.Errorf("%w: collection %q: saved index blob %q page %d: %s", ErrCorrupt, c.name, r.info.name, r.page, what)
	}
	v, closer, err := r.s.snap.Get(pageKey(c.cid, r.s.head.gen, r.blob, r.page))
	if errors.Is(err, pebble.ErrNotFound) {
		return bad("missing")
	}
	if err != nil {
		return fmt.Errorf("%w: collection %q: saved index blob %q page %d: %w", ErrCorrupt, c.name, r.info.name, r.page, err)
	}
	defer closer.Close()
	if uint64(len(v)) != want+4 {
		return bad(fmt.Sprintf("%d bytes, want %d", len(v), want+4))
	}
	payload := v[:want]
	if got, sum := pageCRC(r.blob, r.page, payload), binary.LittleEndian.Uint32(v[want:]); got != sum {
		return bad(fmt.Sprintf("checksum %08x, want %08x", got, sum))
	}
	r.own = append(r.own[:0], payload...)
	r.buf = r.own
	r.page++
	return nil
}

func (r *pageReader) Close() error { return nil }
