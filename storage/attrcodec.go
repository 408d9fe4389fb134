package storage

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Attributes: their values in postings keys (ordered so that a range of
// numbers is a range of keys) here, their validation in attrcheck.go, and
// the attribute record in attrrecord.go.

// Attribute value types in postings and attribute records.
const (
	attrString = 's'
	attrNumber = 'n'
	attrBool   = 'b'
	// attrNull is null: no value bytes.
	attrNull = 'z'
	// attrList is a list: in a record, uvarint count and each element's
	// type byte and value; as a posting, the marker every list attribute
	// has (no value bytes), so that an empty list is seen by Has.
	attrList = 'l'
	// attrListNumber is a posting of a number held in a list: 8
	// order-preserving bytes, as attrNumber.
	attrListNumber = 'm'
)

// listNumber is a number held in a list, as a posting value: apart from a
// scalar number, whose bit-sliced index holds one value per item.
type listNumber float64

// listMarker is the posting value every list attribute has.
type listMarker struct{}

// posting is one posting of an item: an attribute name and a posting
// value: string, bool, float64 (a scalar number), listNumber, listMarker{}
// or nil (null).
type posting struct {
	name string
	v    any
}

// postingsOf returns the postings of attrs: a scalar's value, and for a
// list its marker and one per distinct element.
func postingsOf(attrs map[string]any) map[posting]struct{} {
	out := make(map[posting]struct{}, len(attrs))
	eachPosting(attrs, func(name string, v any) { out[posting{name, v}] = struct{}{} })
	return out
}

// eachPosting calls fn with each posting of attrs, as postingsOf has them
// but without the set: an element repeated in a list comes as often as it
// is there. A new item is indexed in memory so, idempotently (the sets
// were 0.12 of 3.4 CPU-s of a compact load's profile); its stored postings
// go through postingsOf (writePostings).
func eachPosting(attrs map[string]any, fn func(name string, v any)) {
	for name, v := range attrs {
		list, ok := v.([]any)
		if !ok {
			fn(name, v)
			continue
		}
		fn(name, listMarker{})
		for _, e := range list {
			if f, ok := e.(float64); ok {
				e = listNumber(f)
			}
			fn(name, e)
		}
	}
}

// appendAttrValue appends a posting value's bytes: numbers in 8
// order-preserving bytes (so numeric postings sort by value), the other
// values as an attribute record holds them.
func appendAttrValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, attrNumber), SortableFloat(x))
	case listNumber:
		return binary.BigEndian.AppendUint64(append(dst, attrListNumber), SortableFloat(float64(x)))
	case listMarker:
		return append(dst, attrList)
	}
	return appendRecordValue(dst, v)
}

// SortableFloat maps a float64 to a uint64 whose unsigned order is the
// numeric order (-0 and +0 map apart; NaN never reaches storage).
func SortableFloat(f float64) uint64 {
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

// UnsortableFloat inverts SortableFloat.
func UnsortableFloat(u uint64) float64 {
	if u>>63 == 1 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

func postingKey(cid uint32, name string, v any, iid uint32) []byte {
	return postingKeyTo(nil, cid, name, v, iid)
}

// postingKeyTo appends postingKey's key to dst.
func postingKeyTo(dst []byte, cid uint32, name string, v any, iid uint32) []byte {
	k := binary.BigEndian.AppendUint32(append(dst, tagCollection), cid)
	k = append(k, subPosting)
	k = binary.AppendUvarint(k, uint64(len(name)))
	k = append(k, name...)
	k = appendAttrValue(k, v)
	return binary.BigEndian.AppendUint32(k, iid)
}

// parsePosting splits a posting key (without the collection prefix and
// sub-tag) into attribute name, posting value and iid.
func parsePosting(k []byte) (name string, v any, iid uint32, err error) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n+1+4 {
		return "", nil, 0, fmt.Errorf("%w: posting key %x", ErrCorrupt, k)
	}
	name = string(k[w : w+int(n)])
	rest := k[w+int(n):]
	iid = binary.BigEndian.Uint32(rest[len(rest)-4:])
	val := rest[1 : len(rest)-4]
	ok := false
	switch rest[0] {
	case attrString, attrBool, attrNull:
		var left []byte
		v, left, ok = decodeRecordValue(rest[:len(rest)-4], true)
		ok = ok && len(left) == 0
	case attrNumber, attrListNumber:
		if ok = len(val) == 8; ok {
			f := UnsortableFloat(binary.BigEndian.Uint64(val))
			if v = f; rest[0] == attrListNumber {
				v = listNumber(f)
			}
		}
	case attrList:
		v, ok = listMarker{}, len(val) == 0
	}
	if !ok {
		return "", nil, 0, fmt.Errorf("%w: posting key %x", ErrCorrupt, k)
	}
	return name, v, iid, nil
}
