package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// The attribute record: an item's attributes as one value, names sorted.

// sortedNames returns the names of attrs in the record's order.
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
