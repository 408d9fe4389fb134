package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

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
