package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

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

func encodeAttrs(attrs map[string]any) []byte {
	b := binary.AppendUvarint(nil, uint64(len(attrs)))
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

// Quantize returns the cloud as it will read back from storage under
// encoding e: f32 unchanged, f16 and bf16 rounded to nearest even. A value
// that overflows the encoding is refused, naming the field. Compute φ and
// g(X,X) from the quantized cloud so that they match what is stored.
func Quantize(e collconfig.Encoding, c wpcsim.Cloud) (wpcsim.Cloud, error) {
	q, _, err := QuantizeBits(e, c)
	return q, err
}

// QuantizeBits is Quantize that also returns the points' f16 or bf16 bits
// (nil for f32). An ItemWrite carries them as Half, so that a write stores
// them without encoding the points a second time.
func QuantizeBits(e collconfig.Encoding, c wpcsim.Cloud) (wpcsim.Cloud, []uint16, error) {
	if e == collconfig.EncodingF32 {
		return c, nil, nil
	}
	out := wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: make([]float32, len(c.Points))}
	half := make([]uint16, len(c.Points))
	if e == collconfig.EncodingF16 {
		simd.F32ToF16(half, c.Points)
		simd.F16ToF32(out.Points, half)
	} else {
		simd.F32ToBF16(half, c.Points)
		simd.BF16ToF32(out.Points, half)
	}
	for i, x := range c.Points {
		if y := out.Points[i]; math.IsInf(float64(y), 0) && !math.IsInf(float64(x), 0) {
			return wpcsim.Cloud{}, nil, wpcsim.CloudError("points["+strconv.Itoa(i/c.Dim)+"]["+strconv.Itoa(i%c.Dim)+"]",
				"value %g overflows the collection's %s encoding", x, e)
		}
	}
	return out, half, nil
}

// recordLen is the length of appendRecord's encoding.
func recordLen(e collconfig.Encoding, id string, c wpcsim.Cloud) int {
	m := c.Len()
	return 1 + uvarintLen(uint64(len(id))) + len(id) + uvarintLen(uint64(m)) + 4*m + len(c.Points)*e.Size() + 16
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// appendRecord encodes an item record (see the package doc). half, when it
// holds c's points in encoding e (f16 or bf16, from QuantizeBits), is
// stored as is; otherwise the points are encoded here.
func appendRecord(dst []byte, e collconfig.Encoding, id string, c wpcsim.Cloud, half []uint16, self wpcsim.Self) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	dst = binary.AppendUvarint(dst, uint64(c.Len()))
	dst = appendFloats(dst, c.Weights)
	switch e {
	case collconfig.EncodingF32:
		dst = appendFloats(dst, c.Points)
	case collconfig.EncodingF16, collconfig.EncodingBF16:
		if len(half) != len(c.Points) {
			half = make([]uint16, len(c.Points))
			if e == collconfig.EncodingF16 {
				simd.F32ToF16(half, c.Points)
			} else {
				simd.F32ToBF16(half, c.Points)
			}
		}
		if littleEndian && len(half) > 0 {
			dst = append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&half[0])), 2*len(half))...)
		} else {
			for _, h := range half {
				dst = binary.LittleEndian.AppendUint16(dst, h)
			}
		}
	}
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(self.G))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(self.Mass))
}

// CloudBuf holds reusable buffers for decoding item records; a cloud read
// with it aliases the buffers until the next read with the same CloudBuf.
// The zero value is ready to use. Not safe for concurrent use.
type CloudBuf struct {
	weights, points []float32
	half            []uint16
}

// decodeRecord decodes an item record into a fresh cloud.
func decodeRecord(b []byte, e collconfig.Encoding, dim int) (Record, error) {
	return decodeRecordInto(b, e, dim, nil)
}

// decodeRecordID reads an item record's version and ID and returns the
// ID and the rest of the record.
func decodeRecordID(b []byte) (id string, rest []byte, err error) {
	if len(b) == 0 || b[0] != recordVersion {
		return "", nil, fmt.Errorf("%w: item record: unknown record version", ErrCorrupt)
	}
	b = b[1:]
	l, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < l {
		return "", nil, fmt.Errorf("%w: item record: id", ErrCorrupt)
	}
	return string(b[w : w+int(l)]), b[w+int(l):], nil
}

// decodeRecordInto decodes an item record, into buf's storage when buf is
// not nil (the rerank path reads many records and allocates none).
func decodeRecordInto(b []byte, e collconfig.Encoding, dim int, buf *CloudBuf) (Record, error) {
	bad := func(what string) error { return fmt.Errorf("%w: item record: %s", ErrCorrupt, what) }
	id, b, err := decodeRecordID(b)
	if err != nil {
		return Record{}, err
	}
	m, w := binary.Uvarint(b)
	if w <= 0 {
		return Record{}, bad("point count")
	}
	b = b[w:]
	// Check m against the bytes there are before multiplying: a damaged
	// count must not overflow into a small "need" or a huge allocation.
	if per := uint64(4 + dim*e.Size()); len(b) < 16 || m > uint64(len(b)-16)/per {
		return Record{}, bad(fmt.Sprintf("%d bytes cannot hold %d points of dimension %d", len(b), m, dim))
	}
	need := m*4 + m*uint64(dim)*uint64(e.Size()) + 16
	if uint64(len(b)) != need {
		return Record{}, bad(fmt.Sprintf("%d bytes for %d points of dimension %d, want %d", len(b), m, dim, need))
	}
	if buf == nil {
		buf = &CloudBuf{}
	}
	n := int(m) * dim
	buf.weights = slices.Grow(buf.weights[:0], int(m))[:m]
	buf.points = slices.Grow(buf.points[:0], n)[:n]
	c := wpcsim.Cloud{Dim: dim, Weights: buf.weights, Points: buf.points}
	for i := range c.Weights {
		c.Weights[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	b = b[4*m:]
	switch e {
	case collconfig.EncodingF32:
		for i := range c.Points {
			c.Points[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case collconfig.EncodingF16, collconfig.EncodingBF16:
		half := halfView(b[:2*n], buf)
		if e == collconfig.EncodingF16 {
			simd.F16ToF32(c.Points, half)
		} else {
			simd.BF16ToF32(c.Points, half)
		}
	}
	b = b[len(c.Points)*e.Size():]
	self := wpcsim.Self{
		G:    math.Float64frombits(binary.LittleEndian.Uint64(b)),
		Mass: math.Float64frombits(binary.LittleEndian.Uint64(b[8:])),
	}
	return Record{ID: id, Cloud: c, Self: self}, nil
}

// halfView returns src's little-endian uint16s: the bytes themselves when
// the machine is little-endian and src is 2-byte aligned (the common case),
// otherwise a copy in buf.
func halfView(src []byte, buf *CloudBuf) []uint16 {
	n := len(src) / 2
	if n > 0 && littleEndian && uintptr(unsafe.Pointer(&src[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&src[0])), n)
	}
	buf.half = slices.Grow(buf.half[:0], n)[:n]
	for i := range buf.half {
		buf.half[i] = binary.LittleEndian.Uint16(src[2*i:])
	}
	return buf.half
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// appendFloats appends v as float32 LE: its memory itself on a
// little-endian machine.
func appendFloats(dst []byte, v []float32) []byte {
	if littleEndian && len(v) > 0 {
		return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))...)
	}
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

func decodeFloats(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: float vector of %d bytes", ErrCorrupt, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
