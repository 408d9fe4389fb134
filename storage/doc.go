// Package storage keeps wpcdb's collections in Pebble: the catalog, the
// items (points as ingested, weights, g(X,X), attributes), the string-ID to internal-ID map, and the attribute postings from which the
// in-memory roaring bitmaps are rebuilt on open.
//
// A Store is safe for concurrent use; so is a Coll. Writers to one
// collection are serialized (ID assignment and posting maintenance need a
// consistent view); readers never wait for a sync.
//
// # Durability
//
// Every write is one Pebble batch committed with Sync: when Write or Delete
// returns nil, the change is in the synced WAL and survives a crash of the
// process or the machine. A batch is atomic, so a crash never leaves part of
// an item (or part of a write) visible. A Write of Options.BulkWriteBytes or
// more (1 MiB) first writes the records and attributes of its new items as
// sorted SSTables, synced and ingested in one synced manifest edit at
// internal IDs no committed ID maps to, then commits the rest as one
// batch (bulk.go): the same contract (orphans of a write cut short between
// the two steps are never read and are deleted on open), without the WAL,
// the memtable and the compactions for nearly all the bytes. The in-memory bitmaps are derived
// state, changed only after the commit succeeds and rebuilt from Pebble on
// open.
//
// # Folder
//
// A database folder holds Pebble's files and IdentityFile ("WPCDB", the
// line "wpcdb database"), written and synced before Pebble creates
// anything. Open creates a database only in an absent or empty folder,
// refuses any other folder without IdentityFile (ErrNotDatabase) and a
// database whose manifest marker is missing (ErrCorrupt), changing
// nothing in either case: Pebble would take both for a new database and
// delete the files it does not reference.
//
// # Format
//
// Keys start with a one-byte tag. Integers in keys are big-endian so that
// they sort numerically; cid is a collection's 4-byte ID, iid an item's
// dense 4-byte internal ID.
//
//	0x00 "version"                         → uint32 format version (FormatVersion, 3)
//	0x01 name                              → collection record: cid(4) + config JSON
//	0x02                                   → next cid (uint32)
//	0x10 cid 0x00                          → next iid of the collection (uint32)
//	0x10 cid 0x01 id                       → iid(4)            string ID → internal ID
//	0x10 cid 0x02 iid                      → item record (below)
//	0x10 cid 0x03 iid                      → format 2 only: g(X,X), m(X,X), φ (deleted by the upgrade to 3)
//	0x10 cid 0x04 iid                      → attributes (below)
//	0x10 cid 0x05 uvarint(len) name v iid  → posting: item iid has attribute name = v
//	0x10 cid 0x06 term(1) part(1)          → imported feature sample blob ('W' or 'b')
//	0x10 cid 0x07                          → write epoch (uint64): one per Write or Delete
//	0x10 cid 0x08 epoch(8) iid             → change log: item iid was written or deleted at epoch
//	0x10 cid 0x09 name                     → format 1 only: a saved index blob, one value
//	0x10 cid 0x0a                          → format 1 only: the epoch of that saved index (uint64)
//	0x10 cid 0x0b                          → saved-index header (below)
//	0x10 cid 0x0c gen(8) blob(1) page(4)   → saved-index page (below)
//	0x10 cid 0x0d gen(4) list(4) block(4)  → point postings of list, items iid>>shift = block (below)
//	0x10 cid 0x0e gen(4) iid               → point-index item entry (below)
//
// The first-stage index is derived state: a save stores its blobs with the
// epoch they reflect and truncates the change log up to it; the index is
// loaded when first needed and brought up to date by replaying the change
// log after that epoch (or rebuilt from the records). φ is not stored: it
// costs more bytes than the points of a small cloud and is recomputed from
// the record, in batches on every core, when an index is built.
//
// # Saved index
//
// A saved index is a few named blobs (the index package's), each cut into
// pages of at most IndexPageBytes (default 256 KiB), so that no Pebble
// value exceeds 1 MiB and no check reads a large value whole. A save
// (IndexSave) writes its pages under a new generation gen in unsynced
// batches of about 1 MiB, then commits with one synced batch that writes
// the header, deletes the pages of older generations and truncates the
// change log. The header is the commit point: pages of a generation other
// than the header's belong to a save that did not commit, and the next
// save deletes them. Reads go through a Pebble snapshot.
//
// Header (little-endian):
//
//	+---------+---------+-----------+----------------+-----------+-------------+------------+
//	| ver (1) | gen (8) | epoch (8) | page bytes (4) | blobs (1) | blob × n    | CRC-32C (4)|
//	+---------+---------+-----------+----------------+-----------+-------------+------------+
//	ver:   2 (format 1 had no header)
//	blob:  name len (1) | name | size in bytes (8) | pages (4), pages = ⌈size / page bytes⌉;
//	       blob i's pages are keyed with blob(1) = i
//	CRC:   CRC-32C (Castagnoli) of every byte before it
//
// Page, keyed by big-endian gen, blob number and page number:
//
//	+----------------------------------------+---------------------------------------+
//	| payload (page bytes; the last: rest)   | CRC-32C (4) of blob(1) page(4) payload |
//	+----------------------------------------+---------------------------------------+
//
// A page's checksum covers its position, so a page read in place of
// another is caught; it is checked before any of the payload is returned.
// A damaged header or page makes the load fail with ErrCorrupt, and the
// caller rebuilds the index from the items.
//
// Format 1 stored each blob as one value (0x09) with its epoch (0x0a).
// Opening a format 1 store rewrites each collection's blobs in pages with
// that epoch and deletes those keys, in one batch per collection, then
// writes version 2 (an upgrade cut short resumes on the next open); a
// saved index that cannot be read is dropped, to be rebuilt from the items
// when first needed. Nothing else changed between the formats (catalog
// records of either are read).
//
// A posting's v is 's' uvarint(len) bytes for a string, 'b' 0|1 for a
// boolean, 'n' and 8 order-preserving bytes for a number (so numeric
// postings sort by value), 'z' alone for null. A list attribute has the
// posting 'l' alone (so an empty list is seen to exist) and one posting per
// distinct element: 's' and 'b' as above, 'm' and 8 order-preserving bytes
// for a number (apart from 'n': the bit-sliced index of scalar numbers
// holds one value per item, a list's numbers get one bitmap per value).
//
// The item record:
//
//	+---------+------------+----------+-------------+--------------------+---------+-----------+
//	| ver (1) | uvarint n  | id (n B) | uvarint M   | weights f32 LE × M | points  | self      |
//	+---------+------------+----------+-------------+--------------------+---------+-----------+
//	points: M × dim values in the collection's encoding (f32: 4 B LE, f16 and bf16: 2 B LE),
//	        as ingested, not normalized
//	self:   g(X,X) float64 LE, m(X,X) float64 LE
//
// Attributes: uvarint count, then per attribute uvarint(len) name, a type
// byte and the value:
//
//	's' uvarint(len) bytes     a string (at most 64 KiB)
//	'n' float64 LE             a number
//	'b' one byte, 0 or 1       a boolean
//	'z' nothing                null
//	'l' uvarint(count) values  a list: count × (type byte 's', 'n' or 'b' and its value)
//
// Format note: 'z' and 'l' (and the postings 'z', 'l', 'm') came after
// FormatVersion 2 without changing it: records and postings written before
// hold only 's', 'n' and 'b', which read as they always did; a binary
// older than lists and null refuses a record holding them as corrupt
// (ErrCorrupt naming the item), never misreads it. A collection is dropped
// by one range deletion of 0x10 cid.
//
// # Point postings
//
// A maxsim collection's point index (package pointindex) keeps its
// posting lists here, read on demand through the block cache, under a
// generation gen (an index retrained or rebuilt writes a new one; the
// root package deletes the others once it is in use, and any a crash
// left on the next load). The items of a list are grouped by
// iid>>shift (shift fixed per generation, PointPostings.Shift), one value
// per group, so that a list reads as a few dozen values, not one per item:
//
//	value:  entries ascending by iid, each
//	        uvarint(iid − block<<shift) | uvarint(len) | len bytes
//	        (the item's postings in the list, pointindex's bytes)
//
// An item entry lists the values holding the item's postings:
//
//	uvarint(points) | shift(1) | uvarint(lists) | lists × uvarint gap
//	(each list number minus the previous, the first minus 0)
//
// Write and Delete delete an item's postings in every generation, reading
// its entries, in the item's batch; an ItemWrite with Points adds the new
// ones in that batch too (so a crash keeps the item and its postings or
// neither). The values several items share are edited once per batch
// (pointEdits). A PointWriter writes postings outside item writes (builds
// and syncs), holding the write lock from its first change of a batch to
// its commit. Values out of order or past their block are ErrCorrupt.
package storage
