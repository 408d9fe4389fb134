package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Writing a saved index: IndexSave and its page writer.

// IndexSave writes a first-stage index's blobs, page by page, as one save:
// nothing of it is visible until Commit, which makes it the saved index in
// one synced batch. Pages go to Pebble in unsynced batches of a few
// megabytes as they are written, so a save holds one batch, never the
// whole index. Not safe for concurrent use; a second BeginIndexSave on the
// collection waits for the first to commit or abort.
type IndexSave struct {
	c         *Coll
	gen       uint64
	pageBytes int
	batch     *pebble.Batch
	blobs     []blobInfo
	writing   bool // a blob writer is open
	done      bool
	value     []byte // scratch for a page value
}

// BeginIndexSave starts a save of the collection's first-stage index;
// finish it with Commit or Abort.
func (c *Coll) BeginIndexSave() (*IndexSave, error) {
	if err := c.checkLive(); err != nil {
		return nil, err
	}
	c.saveMu.Lock()
	s := &IndexSave{c: c, pageBytes: c.store.indexPageBytes, batch: c.store.db.NewBatch(), gen: 1}
	all := collKey(c.cid, subIndexPage)
	h, ok, err := readIndexHead(c.store.db, c.cid)
	switch {
	case ok:
		s.gen = h.gen + 1
		// Pages of a save that never committed carry this generation or
		// a later one.
		s.batch.DeleteRange(pagePrefix(c.cid, s.gen), upperBound(all), nil)
	case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrIncompatible):
		s.batch.DeleteRange(all, upperBound(all), nil) // generations unknown
	case err != nil:
		s.Abort()
		return nil, fmt.Errorf("storage: save index of %q: %w", c.name, err)
	default:
		s.batch.DeleteRange(all, upperBound(all), nil)
	}
	return s, nil
}

// CreateBlob returns a writer of the blob name; close it before the next
// blob or Commit.
func (s *IndexSave) CreateBlob(name string) (io.WriteCloser, error) {
	switch {
	case s.done:
		return nil, errors.New("storage: index save already finished")
	case s.writing:
		return nil, errors.New("storage: index save: a blob is still being written")
	case len(name) == 0 || len(name) > 255:
		return nil, fmt.Errorf("storage: index blob name %q: 1 to 255 bytes", name)
	case len(s.blobs) == maxSavedBlobs:
		return nil, fmt.Errorf("storage: index save: more than %d blobs", maxSavedBlobs)
	case slices.ContainsFunc(s.blobs, func(b blobInfo) bool { return b.name == name }):
		return nil, fmt.Errorf("storage: index blob %q written twice", name)
	}
	s.writing = true
	return &pageWriter{s: s, blob: uint8(len(s.blobs)), name: name, buf: make([]byte, 0, s.pageBytes)}, nil
}

// PutBlob stores a whole blob (index.Persister).
func (s *IndexSave) PutBlob(name string, data []byte) error {
	w, err := s.CreateBlob(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

// GetBlob is not available while saving.
func (s *IndexSave) GetBlob(name string) ([]byte, error) {
	return nil, errors.New("storage: an index save cannot be read")
}

// OpenBlob is not available while saving.
func (s *IndexSave) OpenBlob(name string) (io.ReadCloser, int64, error) {
	return nil, 0, errors.New("storage: an index save cannot be read")
}

// putPage adds a page to the batch, committing the batch (unsynced) when
// it has grown to saveBatchBytes.
func (s *IndexSave) putPage(blob uint8, page uint32, payload []byte) error {
	s.value = binary.LittleEndian.AppendUint32(append(s.value[:0], payload...), pageCRC(blob, page, payload))
	if err := s.batch.Set(pageKey(s.c.cid, s.gen, blob, page), s.value, nil); err != nil {
		return err
	}
	if s.batch.Len() < saveBatchBytes {
		return nil
	}
	if err := s.commit(pebble.NoSync); err != nil {
		return err
	}
	s.batch = s.c.store.db.NewBatch()
	return nil
}

// commit commits and closes the batch, unless the collection was dropped
// meanwhile (writeMu orders it with DropCollection).
func (s *IndexSave) commit(o *pebble.WriteOptions) error {
	c := s.c
	c.lockWrites()
	defer c.writeMu.Unlock()
	defer func() {
		s.batch.Close()
		s.batch = nil
	}()
	if err := c.checkLive(); err != nil {
		return err
	}
	if err := s.batch.Commit(o); err != nil {
		return fmt.Errorf("storage: save index of %q: %w", c.name, err)
	}
	return nil
}

// Commit makes the written blobs the collection's saved index, current to
// epoch, removes the previous one, and drops the change log up to epoch,
// in one synced batch.
func (s *IndexSave) Commit(epoch uint64) error {
	if s.done || s.writing || s.batch == nil {
		s.Abort()
		return errors.New("storage: index save: commit of an unfinished or failed save")
	}
	c := s.c
	h := indexHead{gen: s.gen, epoch: epoch, pageBytes: uint32(s.pageBytes), blobs: s.blobs}
	s.batch.Set(collKey(c.cid, subIndexHead), h.encode(), nil)
	s.batch.DeleteRange(collKey(c.cid, subIndexPage), pagePrefix(c.cid, s.gen), nil)
	lo := collKey(c.cid, subChange)
	s.batch.DeleteRange(lo, binary.BigEndian.AppendUint64(collKey(c.cid, subChange), epoch+1), nil)
	c.deleteLegacyIndex(s.batch) // a format 1 saved index being upgraded
	err := s.commit(pebble.Sync)
	s.finish()
	return err
}

// Abort abandons the save; pages already committed are removed by the
// next save.
func (s *IndexSave) Abort() {
	if s.batch != nil {
		s.batch.Close()
		s.batch = nil
	}
	s.finish()
}

func (s *IndexSave) finish() {
	if !s.done {
		s.done = true
		s.c.saveMu.Unlock()
	}
}

// pageWriter cuts a blob into pages.
type pageWriter struct {
	s    *IndexSave
	blob uint8
	name string
	buf  []byte
	page uint32
	size uint64
	err  error
}

func (w *pageWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == cap(w.buf) {
			if w.err = w.flush(); w.err != nil {
				return 0, w.err
			}
		}
	}
	w.size += uint64(n)
	return n, nil
}

func (w *pageWriter) flush() error {
	if w.page == ^uint32(0) {
		return fmt.Errorf("storage: index blob %q has too many pages", w.name)
	}
	err := w.s.putPage(w.blob, w.page, w.buf)
	w.page++
	w.buf = w.buf[:0]
	return err
}

func (w *pageWriter) Close() error {
	if w.err == nil && len(w.buf) > 0 {
		w.err = w.flush()
	}
	if w.err != nil {
		return w.err
	}
	w.s.writing = false
	w.s.blobs = append(w.s.blobs, blobInfo{name: w.name, size: w.size, pages: w.page})
	w.err = errors.New("storage: index blob writer closed")
	return nil
}
