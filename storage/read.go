package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Reads: items by ID or internal ID, records through the cloud cache,
// and every record in order.

// Record is what an item's record holds: its ID, cloud and g(X,X).
type Record struct {
	ID    string
	Cloud wpcsim.Cloud
	Self  wpcsim.Self
}

// Item is a stored item: its record, internal ID and attributes.
type Item struct {
	Record
	IID   uint32 // dense internal ID
	Attrs map[string]any
}

// lookup maps a string ID to its internal ID.
func (c *Coll) lookup(id string) (uint32, bool, error) {
	v, closer, err := c.store.db.Get(idKey(c.cid, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, readError(err, fmt.Sprintf("id map entry of %s in collection %q", QuoteID(id), c.name))
	}
	defer closer.Close()
	if len(v) != 4 {
		return 0, false, fmt.Errorf("%w: id map entry of %s", ErrCorrupt, QuoteID(id))
	}
	return binary.BigEndian.Uint32(v), true, nil
}

// lookupMany maps the IDs that exist among ids to their internal IDs, with
// one iterator seeking through them in order: cheaper than a Get per ID,
// which opens an iterator and reads index blocks each time (in a load
// almost every lookup is a miss).
func (c *Coll) lookupMany(ids []string) (map[string]uint32, error) {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	p := collKey(c.cid, subID)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	found := map[string]uint32{}
	var key []byte
	for _, id := range sorted {
		key = append(append(key[:0], p...), id...)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			continue
		}
		v := it.Value()
		if len(v) != 4 {
			return nil, fmt.Errorf("%w: id map entry of %s", ErrCorrupt, QuoteID(id))
		}
		found[id] = binary.BigEndian.Uint32(v)
	}
	if err := it.Error(); err != nil {
		return nil, readError(err, fmt.Sprintf("id map of collection %q", c.name))
	}
	return found, nil
}

func (c *Coll) readAttrs(iid uint32) (map[string]any, error) {
	v, closer, err := c.store.db.Get(iidKey(c.cid, subAttrs, iid))
	if err != nil {
		return nil, readError(err, "attributes of "+c.itemName(iid, nil))
	}
	defer closer.Close()
	attrs, err := decodeAttrs(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.itemName(iid, nil), err)
	}
	return attrs, nil
}

// Get returns the live item with this ID, or ErrNotFound.
func (c *Coll) Get(id string) (Item, error) {
	if err := c.checkLive(); err != nil {
		return Item{}, err
	}
	iid, found, err := c.lookup(id)
	if err != nil {
		return Item{}, err
	}
	if !found {
		return Item{}, fmt.Errorf("%w: %s in collection %q", ErrNotFound, QuoteID(id), c.name)
	}
	return c.GetByIID(iid)
}

// GetByIID returns the item with this internal ID.
func (c *Coll) GetByIID(iid uint32) (Item, error) {
	rec, err := c.ReadCloud(iid, nil)
	if err != nil {
		return Item{}, err
	}
	attrs, err := c.readAttrs(iid)
	if err != nil {
		return Item{}, err
	}
	return Item{Record: rec, IID: iid, Attrs: attrs}, nil
}

// ReadCloud reads only an item's record (GetByIID also reads attributes),
// through the cloud cache, decoding into buf (nil: fresh memory): the
// rerank path reads many records and should allocate for none. The cloud
// aliases buf until its next use.
func (c *Coll) ReadCloud(iid uint32, buf *CloudBuf) (Record, error) {
	return c.readCloud(iid, buf, true)
}

// ReadCloudScan is ReadCloud for a scan of many items (an exact search):
// it reads through the cache but adds what it reads only while the cache
// has room without evicting, so that a scan of a collection the cache
// cannot hold (20,000 ColBERT documents are 4 times the default budget in
// f16) neither evicts the clouds reranks keep reading nor copies every
// cloud into it, while a collection that fits is still cached.
func (c *Coll) ReadCloudScan(iid uint32, buf *CloudBuf) (Record, error) {
	return c.readCloud(iid, buf, false)
}

func (c *Coll) readCloud(iid uint32, buf *CloudBuf, admit bool) (Record, error) {
	cache := c.store.clouds
	var gen uint64
	if cache != nil {
		e, g, ok := cache.get(cacheKey(c.cid, iid))
		if ok {
			return e.record(buf), nil
		}
		gen = g
	}
	v, closer, err := c.store.db.Get(iidKey(c.cid, subRecord, iid))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, fmt.Errorf("%w: internal id %d in collection %q", ErrNotFound, iid, c.name)
	}
	if err != nil {
		return Record{}, readError(err, fmt.Sprintf("item %d in collection %q", iid, c.name))
	}
	defer closer.Close()
	rec, half, err := decodeRecordHalf(v, c.cfg.Encoding, c.cfg.Dim, buf)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", c.itemName(iid, v), err)
	}
	if cache == nil {
		return rec, nil
	}
	if size := cachedSize(rec, half); cache.fits(size) && (admit || cache.room(size)) {
		// The cache keeps its own copy: buf is reused by the caller, and
		// half aliases v.
		e := newCached(cacheKey(c.cid, iid), rec, half, c.cfg.Encoding)
		if admit {
			cache.put(gen, e)
		} else {
			cache.putSpare(gen, e)
		}
	}
	return rec, nil
}

// Lookup maps a string ID to its internal ID (ok false when absent).
func (c *Coll) Lookup(id string) (uint32, bool, error) { return c.lookup(id) }

// recordsEnd bounds a scan of the records: the key of the next internal
// ID, so that the records a bulk write ingests before it commits are not
// read (bulk.go).
func (c *Coll) recordsEnd() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return iidKey(c.cid, subRecord, c.nextIID)
}

// ScanRecords calls fn with every item's internal ID and record, in
// internal-ID order: this is how a first-stage index is rebuilt (φ is not
// stored; the caller computes it from the cloud). The record aliases
// memory reused by the next call. The cloud cache is bypassed.
func (c *Coll) ScanRecords(fn func(iid uint32, rec Record) error) error {
	p := collKey(c.cid, subRecord)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: c.recordsEnd()})
	if err != nil {
		return err
	}
	defer it.Close()
	var buf CloudBuf
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(p)+4 {
			return fmt.Errorf("%w: record key %x", ErrCorrupt, k)
		}
		iid := binary.BigEndian.Uint32(k[len(p):])
		rec, err := decodeRecordInto(it.Value(), c.cfg.Encoding, c.cfg.Dim, &buf)
		if err != nil {
			return fmt.Errorf("%s: %w", c.itemName(iid, it.Value()), err)
		}
		if err := fn(iid, rec); err != nil {
			return err
		}
	}
	return iterError(it.Error(), fmt.Sprintf("records of collection %q", c.name))
}
