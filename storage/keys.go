package storage

import "encoding/binary"

// The key layout (drawn in the package doc): tags, sub-tags and the keys
// built from them.

// Key tags and collection sub-tags (see the package doc).
const (
	tagVersion    = 0x00
	tagCatalog    = 0x01
	tagNextCID    = 0x02
	tagCollection = 0x10

	subNextIID  = 0x00
	subID       = 0x01
	subRecord   = 0x02
	subPhi      = 0x03
	subAttrs    = 0x04
	subPosting  = 0x05
	subFeatures = 0x06
	subEpoch    = 0x07
	subChange   = 0x08
	// 0x09 and 0x0a held format 1's saved index (one value per blob);
	// opening a format 1 store deletes them (see migrateFormat1).
	subLegacyIndex   = 0x09
	subLegacyIndexAt = 0x0a
	subIndexHead     = 0x0b
	subIndexPage     = 0x0c
	subPointList     = 0x0d // point postings: gen, list, iid (points.go)
	subPointItem     = 0x0e // point-index item entries: gen, iid
)

const recordVersion = 1

func collPrefix(cid uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{tagCollection}, cid)
}

func collKey(cid uint32, sub byte) []byte { return append(collPrefix(cid), sub) }

func idKey(cid uint32, id string) []byte { return append(collKey(cid, subID), id...) }

func iidKey(cid uint32, sub byte, iid uint32) []byte { return iidKeyTo(nil, cid, sub, iid) }

// iidKeyTo appends iidKey's key to dst.
func iidKeyTo(dst []byte, cid uint32, sub byte, iid uint32) []byte {
	dst = binary.BigEndian.AppendUint32(append(dst, tagCollection), cid)
	return binary.BigEndian.AppendUint32(append(dst, sub), iid)
}

// upperBound returns the smallest key greater than every key with prefix p.
func upperBound(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
