package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Saved first-stage index: blobs cut into pages (see the package doc,
// # Saved index).

const (
	// DefaultIndexPageBytes is the payload of a saved-index page.
	DefaultIndexPageBytes = 256 << 10
	// MaxIndexPageBytes keeps every page value (payload and checksum)
	// within 1 MiB.
	MaxIndexPageBytes = 1<<20 - 4
	// indexFormat is the version byte of the saved-index header. Format 1
	// was one Pebble value per blob under sub-tags 0x09 and 0x0a.
	indexFormat = 2
	// saveBatchBytes: pages are committed (unsynced) in batches of about
	// this size (below half of Pebble's 4 MiB memtable, so they go through
	// it like writes); the header's synced batch commits the save.
	saveBatchBytes = 1 << 20
	maxSavedBlobs  = 255
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func pagePrefix(cid uint32, gen uint64) []byte {
	return binary.BigEndian.AppendUint64(collKey(cid, subIndexPage), gen)
}

func pageKey(cid uint32, gen uint64, blob uint8, page uint32) []byte {
	return binary.BigEndian.AppendUint32(append(pagePrefix(cid, gen), blob), page)
}

// pageCRC is the CRC-32C of a page's blob number, page number and payload,
// so that a page read in place of another is caught too.
func pageCRC(blob uint8, page uint32, payload []byte) uint32 {
	var pos [5]byte
	pos[0] = blob
	binary.BigEndian.PutUint32(pos[1:], page)
	return crc32.Update(crc32.Checksum(pos[:], castagnoli), castagnoli, payload)
}

// indexHead is the saved-index header, the commit point of a save.
type indexHead struct {
	gen       uint64
	epoch     uint64
	pageBytes uint32
	blobs     []blobInfo
}

type blobInfo struct {
	name  string
	size  uint64
	pages uint32
}

func (h *indexHead) encode() []byte {
	le := binary.LittleEndian
	b := []byte{indexFormat}
	b = le.AppendUint64(b, h.gen)
	b = le.AppendUint64(b, h.epoch)
	b = le.AppendUint32(b, h.pageBytes)
	b = append(b, byte(len(h.blobs)))
	for _, bl := range h.blobs {
		b = append(b, byte(len(bl.name)))
		b = append(b, bl.name...)
		b = le.AppendUint64(b, bl.size)
		b = le.AppendUint32(b, bl.pages)
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeIndexHead(v []byte) (indexHead, error) {
	var h indexHead
	bad := func(what string) (indexHead, error) {
		return indexHead{}, fmt.Errorf("%w: saved index header: %s", ErrCorrupt, what)
	}
	if len(v) < 4 {
		return bad("too short")
	}
	body := v[:len(v)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(v[len(v)-4:]) {
		return bad("checksum mismatch")
	}
	if len(body) < 22 {
		return bad("too short")
	}
	if body[0] != indexFormat {
		return indexHead{}, fmt.Errorf("%w: saved index format %d, this build reads format %d", ErrIncompatible, body[0], indexFormat)
	}
	le := binary.LittleEndian
	h.gen, h.epoch, h.pageBytes = le.Uint64(body[1:]), le.Uint64(body[9:]), le.Uint32(body[17:])
	if h.pageBytes == 0 || h.pageBytes > MaxIndexPageBytes {
		return bad(fmt.Sprintf("page size %d", h.pageBytes))
	}
	n := int(body[21])
	body = body[22:]
	for i := 0; i < n; i++ {
		if len(body) < 1 || len(body) < 1+int(body[0])+12 {
			return bad("truncated blob list")
		}
		l := int(body[0])
		bl := blobInfo{name: string(body[1 : 1+l]), size: le.Uint64(body[1+l:]), pages: le.Uint32(body[9+l:])}
		if want := (bl.size + uint64(h.pageBytes) - 1) / uint64(h.pageBytes); uint64(bl.pages) != want {
			return bad(fmt.Sprintf("blob %q: %d pages for %d bytes", bl.name, bl.pages, bl.size))
		}
		h.blobs = append(h.blobs, bl)
		body = body[13+l:]
	}
	if len(body) != 0 {
		return bad("trailing bytes")
	}
	return h, nil
}

// readIndexHead returns the saved-index header; ok is false when none.
func readIndexHead(r pebble.Reader, cid uint32) (h indexHead, ok bool, err error) {
	v, closer, err := r.Get(collKey(cid, subIndexHead))
	if errors.Is(err, pebble.ErrNotFound) {
		return h, false, nil
	}
	if err != nil {
		return h, false, err
	}
	defer closer.Close()
	h, err = decodeIndexHead(v)
	return h, err == nil, err
}

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
	c.writeMu.Lock()
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

// migrateFormat1 turns a format 1 store into format 2. Only the saved
// first-stage index changed: format 1 kept each blob in one Pebble value
// (0x10 cid 0x09 name) with its epoch (0x10 cid 0x0a). Each collection's
// blobs are rewritten in pages as they are, with their epoch (the change
// log after it is still there), and the old keys deleted in the same
// batch; blobs that cannot be read are dropped, and the index is rebuilt
// from the items when first needed. The version is written last, so an
// upgrade cut short resumes on the next open.
func (s *Store) migrateFormat1() error {
	var migrated, dropped []string
	for name, c := range s.colls {
		ok, err := c.migrateLegacyIndex()
		if err != nil {
			s.logger.Warn("storage: format 1 saved first-stage index unreadable; dropped, it is rebuilt from the items on first use",
				"collection", name, "err", err)
			b := s.db.NewBatch()
			c.deleteLegacyIndex(b)
			err = b.Commit(pebble.Sync)
			b.Close()
			if err != nil {
				return fmt.Errorf("storage: upgrading format 1: collection %q: %w", name, err)
			}
			dropped = append(dropped, name)
			continue
		}
		if ok {
			migrated = append(migrated, name)
		}
	}
	if err := s.db.Set(versionKey, binary.BigEndian.AppendUint32(nil, 2), pebble.Sync); err != nil {
		return fmt.Errorf("storage: upgrading format 1: %w", err)
	}
	s.logger.Warn("storage: upgraded the store from format 1 to 2: saved first-stage indexes rewritten in pages",
		"migrated", migrated, "dropped", dropped)
	return nil
}

func (c *Coll) deleteLegacyIndex(b *pebble.Batch) {
	legacy := collKey(c.cid, subLegacyIndex)
	b.DeleteRange(legacy, upperBound(legacy), nil)
	b.Delete(collKey(c.cid, subLegacyIndexAt), nil)
}

// migrateLegacyIndex rewrites a format 1 saved index in pages; ok is false
// when the collection had none.
func (c *Coll) migrateLegacyIndex() (ok bool, err error) {
	v, closer, err := c.store.db.Get(collKey(c.cid, subLegacyIndexAt))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(v) != 8 {
		closer.Close()
		return false, fmt.Errorf("%w: format 1 saved index epoch", ErrCorrupt)
	}
	epoch := binary.BigEndian.Uint64(v)
	closer.Close()
	save, err := c.BeginIndexSave()
	if err != nil {
		return false, err
	}
	p := collKey(c.cid, subLegacyIndex)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		save.Abort()
		return false, err
	}
	for it.First(); it.Valid() && err == nil; it.Next() {
		var val []byte
		if val, err = it.ValueAndErr(); err == nil {
			err = save.PutBlob(string(it.Key()[len(p):]), val)
		}
	}
	if err = errors.Join(err, it.Error(), it.Close()); err != nil {
		save.Abort()
		return false, err
	}
	return true, save.Commit(epoch) // deletes the format 1 keys too
}
