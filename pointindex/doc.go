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
// # Layout in memory
//
// For each centroid, one posting list in parallel arrays; a posting is one
// point, 8 + d·bits/8 bytes (40 at d = 128 with 2 bits):
//
//	list c:  slots   [n]uint32   the item's slot
//	         points  [n]uint16   the point's number in its cloud
//	         weights [n]uint16   the point's weight, float16 (unused by
//	                             MaxSim, which ignores item weights; kept
//	                             for the kernels)
//	         codes   [n·B]byte   B = ceil(d·bits/8) bytes per posting:
//	                             dimension p·(8/bits)+t in bits
//	                             [t·bits, (t+1)·bits) of byte p
//
// and per index:
//
//	centroids  [k·d]float32   unit rows
//	cut        [d·(2^bits−1)]float32, val [d·2^bits]float32: the buckets
//	iidOf      [slots]uint32  slot → internal ID
//	npts       [slots]uint32  slot → its postings
//	live       bitset over slots: set for an item's current slot
//	slotOf     map internal ID → current slot
//
// # Writes and deletes
//
// Add gives the item a new slot and appends its postings; the slot it had
// (an upsert) is cleared from live. Delete clears the item's slot. A dead
// slot's postings stay in their lists, skipped by searches, until they make
// up a third of all postings (and at least 1,024): the write that crosses
// that compacts every list and renumbers the live slots densely, under the
// write lock. Centroids are never retrained in place: a collection whose
// data drifted recalibrates and rebuilds the index.
//
// # Persistence
//
// The index is derived state. The root package saves it with the rest of
// the first stage, as the blob "points" of storage's saved index (pages
// under the collection's saved-index key range, committed by one synced
// header, so a crash leaves the previous save or the new one), and on
// load reads it back and replays the change log since the save into it;
// a missing or damaged blob costs a rebuild from the stored clouds. The
// blob is WriteTo's form, little-endian:
//
//	'W' 'P' 'I' version(1) bits(u8)
//	d u32 | k u32 | nprobe u32 | maxErr f32
//	centroids [k·d]f32 | cut [d·(2^bits−1)]f32 | val [d·2^bits]f32
//	slots n u32 | n × (iid u32, npts u32) | live [(n+63)/64]u64
//	k × list: count m u32 | slots [m]u32 | m × (point u16, weight f16) | codes [m·B]byte
//	crc32c u32 of everything before it
//
// Read checks the checksum and every count against the bytes left before
// allocating, and gives ErrCorrupt for anything out of range. The whole
// index is read into memory: postings in Pebble under their own key range,
// read on demand for collections larger than memory, are not built yet
// (issue 16).
package pointindex
