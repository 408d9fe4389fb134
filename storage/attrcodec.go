package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// Attributes: their values in postings keys (ordered so that a range of
// numbers is a range of keys), their validation, and the attribute record.

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
	for name, v := range attrs {
		list, ok := v.([]any)
		if !ok {
			out[posting{name, v}] = struct{}{}
			continue
		}
		out[posting{name, listMarker{}}] = struct{}{}
		for _, e := range list {
			if f, ok := e.(float64); ok {
				e = listNumber(f)
			}
			out[posting{name, e}] = struct{}{}
		}
	}
	return out
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
	k := collKey(cid, subPosting)
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

// CheckAttrs validates attribute names and values: names 1–256 bytes;
// values strings (≤ 64 KiB), finite float64 numbers, booleans, nil (null)
// or lists ([]any) of at most MaxAttrListLength strings, numbers and
// booleans; at most MaxAttrsBytes in all, as stored.
func CheckAttrs(attrs map[string]any) error {
	total := 0
	for name, v := range attrs {
		if name == "" || len(name) > MaxAttrNameLength {
			return invalidItem("attrs", "name %q must be 1 to %d bytes", name, MaxAttrNameLength)
		}
		if !utf8.ValidString(name) {
			return invalidItem("attrs", "name %q is not valid UTF-8", name)
		}
		total += len(name) + 2
		if list, ok := v.([]any); ok {
			if len(list) > MaxAttrListLength {
				return invalidItem("attrs."+name, "list of %d values exceeds %d", len(list), MaxAttrListLength)
			}
			for i, e := range list {
				n, err := checkScalar(e, false)
				if err != nil {
					return invalidItem(fmt.Sprintf("attrs.%s[%d]", name, i), "%v", err)
				}
				total += n
			}
		} else {
			n, err := checkScalar(v, true)
			if err != nil {
				return invalidItem("attrs."+name, "%v", err)
			}
			total += n
		}
		if total > MaxAttrsBytes {
			return invalidItem("attrs", "more than %d bytes of attributes (at attrs.%s)", MaxAttrsBytes, name)
		}
	}
	return nil
}

// checkScalar checks a value that is not a list and returns about its
// stored size. A list may not hold null.
func checkScalar(v any, nullOK bool) (int, error) {
	switch x := v.(type) {
	case string:
		if len(x) > MaxAttrValueLength {
			return 0, fmt.Errorf("string of %d bytes exceeds %d", len(x), MaxAttrValueLength)
		}
		if !utf8.ValidString(x) {
			return 0, errors.New("string is not valid UTF-8")
		}
		return len(x) + 4, nil
	case bool:
		return 2, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("number must be finite, got %v", x)
		}
		return 9, nil
	case nil:
		if nullOK {
			return 1, nil
		}
		return 0, errors.New("a list holds strings, numbers and booleans, not null")
	}
	kind := fmt.Sprintf("%T", v)
	switch v.(type) {
	case []any:
		kind = "a list"
	case map[string]any:
		kind = "an object"
	default:
		if strings.HasPrefix(kind, "[]") {
			kind += " (a list is a []any)"
		}
	}
	if nullOK {
		return 0, fmt.Errorf("value must be a string, number, boolean, null or a list of those, got %s", kind)
	}
	return 0, fmt.Errorf("a list holds strings, numbers and booleans, got %s", kind)
}

func sortedNames(attrs map[string]any) []string {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func encodeAttrs(attrs map[string]any) []byte { return appendAttrs(nil, attrs) }

// appendAttrs appends the encoding of attrs to b.
func appendAttrs(b []byte, attrs map[string]any) []byte {
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	for _, name := range sortedNames(attrs) {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		if list, ok := attrs[name].([]any); ok {
			b = binary.AppendUvarint(append(b, attrList), uint64(len(list)))
			for _, e := range list {
				b = appendRecordValue(b, e)
			}
			continue
		}
		b = appendRecordValue(b, attrs[name])
	}
	return b
}

// appendRecordValue appends a scalar's type byte and value as an attribute
// record holds them.
func appendRecordValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		b = append(b, attrString)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...)
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, attrNumber), math.Float64bits(x))
	case bool:
		v := byte(0)
		if x {
			v = 1
		}
		return append(b, attrBool, v)
	case nil:
		return append(b, attrNull)
	}
	panic(fmt.Sprintf("storage: attribute value of type %T", v))
}

func decodeAttrs(b []byte) (map[string]any, error) {
	bad := fmt.Errorf("%w: attribute record", ErrCorrupt)
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, bad
	}
	b = b[w:]
	if n == 0 {
		return nil, nil
	}
	if n > uint64(len(b))/2 { // each attribute takes at least 2 bytes
		return nil, bad
	}
	out := make(map[string]any, n)
	for i := uint64(0); i < n; i++ {
		l, w := binary.Uvarint(b)
		if w <= 0 || l >= uint64(len(b)-w) { // the name, then a type byte
			return nil, bad
		}
		name := string(b[w : w+int(l)])
		b = b[w+int(l):]
		if b[0] != attrList {
			v, rest, ok := decodeRecordValue(b, true)
			if !ok {
				return nil, bad
			}
			out[name], b = v, rest
			continue
		}
		m, w := binary.Uvarint(b[1:])
		if w <= 0 || m > uint64(len(b)-1-w)/2 { // each element takes at least 2 bytes
			return nil, bad
		}
		b = b[1+w:]
		list := make([]any, m)
		for j := range list {
			v, rest, ok := decodeRecordValue(b, false)
			if !ok {
				return nil, bad
			}
			list[j], b = v, rest
		}
		out[name] = list
	}
	return out, nil
}

// decodeRecordValue reads a scalar's type byte and value; ok false when
// the bytes are damaged (or hold null where nullOK is false).
func decodeRecordValue(b []byte, nullOK bool) (v any, rest []byte, ok bool) {
	if len(b) < 1 {
		return nil, nil, false
	}
	typ, b := b[0], b[1:]
	switch typ {
	case attrString:
		l, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < l {
			return nil, nil, false
		}
		return string(b[w : w+int(l)]), b[w+int(l):], true
	case attrNumber:
		if len(b) < 8 {
			return nil, nil, false
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:], true
	case attrBool:
		if len(b) < 1 {
			return nil, nil, false
		}
		return b[0] == 1, b[1:], true
	case attrNull:
		return nil, b, nullOK
	}
	return nil, nil, false
}
