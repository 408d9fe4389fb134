// Package pointindex is a point-level first stage for MaxSim, in the manner
// of ColBERTv2/PLAID and WARP: every stored point of every cloud, as a unit
// vector x̂, is filed under its nearest of k k-means centroids with its
// residual x̂ − c quantized to a few bits per dimension. A search probes,
// for each query point, the centroids nearest it, estimates each found
// item's weighted MaxSim from centroid scores plus decoded residuals, and
// returns the best items by that estimate for an exact rerank (see
// Index.Search). The estimate only prunes: scores users see are exact.
//
// It sits beside index/ in the layering: it imports wpcsim, internal/simd
// and roaring, never storage, query or the root package. The root package
// builds it from the stored clouds when a maxsim collection's first stage
// is the point index (firststage.Points) and keeps it current on writes.
//
// # Training
//
// Build reads its Source twice: a reservoir sample of points (64 per
// centroid, at most 131,072) trains spherical k-means (assignment by the
// largest inner product on the SIMD Gram kernel, centroids renormalized
// means; k defaults to the power of two nearest 2·sqrt(points), 64 to
// 4,096), and the sample's residuals fit per-dimension buckets: 2^bits
// buckets cut at the quantiles of the dimension's residuals, each decoded
// to the mean of the training values in it. Then every cloud is added.
//
// # Layout
//
// In memory: the centroids [k·d]float32 (unit rows), the buckets (cut
// [d·(2^bits−1)]float32, val [d·2^bits]float32), and a point count per
// internal ID. The posting lists are in a Store, read on demand: for a
// collection, storage's point postings in Pebble (firststage.PointStore;
// the keys are storage's, drawn in its package doc, # Point postings), in
// memory for tests and calibration samples (NewMemStore). A Store keeps,
// per generation gen (a retrained index writes a new one) and list c,
// each item's postings in that list as one byte string of 4 + B bytes a
// posting (B = ceil(d·bits/8); 36 at d = 128 with 2 bits):
//
//	posting:  point u16 | weight f16 (unused by MaxSim, which ignores item
//	          weights; kept for the kernels) | code [B]byte: dimension
//	          p·(8/bits)+t in bits [t·bits, (t+1)·bits) of byte p
//
// An item's postings are grouped by list (Encode): one string per list
// it has points in, with Shift, the index's grouping of items in the
// store's values (storage stores the items iid>>Shift of a list in one
// value; Train sets Shift so that a value holds about 32 postings).
//
// A search reads each probed list once (the query points probing it
// share it): a resident copy (below) in place, the others through one
// reader (a consistent view) into scratch memory.
//
// Resident lists (resident.go): a list a search read is kept in memory,
// as its postings' items and codes (4 + B bytes a posting; where
// simd.ScanNibbles runs in assembly, the codes transposed into blocks of
// 64 postings, scanned a block at a time through quantized nibble tables,
// see Index.Search), while the index's budget allows (SetResidentBytes, DefaultResidentBytes: 256
// MiB); the lists beyond it are read from the store by every search, so
// a collection whose postings exceed the budget keeps the excess on disk
// (and in Pebble's block cache). A write drops the resident lists the
// item's new postings are in and records the item's write epoch: a
// resident list read before it skips the item's (stale) postings. A list
// read while a write to it went on is not kept.
//
// # Writes and deletes
//
// Encode computes a cloud's postings without touching the store: the root
// package writes them in the same Pebble batch as the item (so a crash
// leaves both or neither) and calls Added. Storage deletes an item's
// postings, in every generation, whenever it writes or deletes the item,
// so an item written while no index was loaded has none until Sync adds
// them. Add and Delete go through the Store (builds, syncs, tests).
//
// # Retraining
//
// Drift is the mean residual norm |x̂ − c| of the points written since
// the index was trained over that of its training sample (about 1.05 for
// points like the training data, 1.7 for a new vocabulary: TestDrift).
// The root package (pointretrain.go) retrains past 1.2: a new index
// under a new generation, built from the live items while writes go on,
// the writes meanwhile replayed into it, then swapped in whole.
//
// # Persistence
//
// The saved form (WriteTo, saved by firststage with the rest of the first
// stage, as the blob "points" of storage's saved index) holds what is in
// memory except the counts; the postings are the store's. Read gives an
// index whose counts are zero until Sync reads the store's item entries
// (deleting those of items no longer live, adding the live items without
// postings). A missing or damaged blob costs a rebuild from the stored
// clouds, under a new generation. The blob is little-endian:
//
//	'W' 'P' 'I' version(2) bits(u8) shift(u8)
//	d u32 | k u32 | nprobe u32 | gen u32 | maxErr f32 | trainResid f32
//	added u64 | addedResid f64 (Drift's sums)
//	centroids [k·d]f32 | cut [d·(2^bits−1)]f32 | val [d·2^bits]f32
//	crc32c u32 of everything before it
//
// Read checks the checksum and every count against the bytes left before
// allocating, and gives ErrCorrupt for anything out of range; version 1
// (which held the lists too) is ErrCorrupt, rebuilt.
package pointindex
