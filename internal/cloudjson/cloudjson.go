// Package cloudjson reads and writes wpcdb's JSON cloud, the format users
// type, pipe and ingest:
//
//	{"id": "a", "weights": [..M], "points": [[..d], ..M], "attrs": {"color": "red", "year": 2021}}
//
// "points" is required; "weights" may be left out (every weight 1); "id" and
// "attrs" are optional here (ingest requires an id). Attribute values are
// strings, finite numbers (kept as float64), booleans, null or lists of
// strings, numbers and booleans ([]any). Unknown fields are
// refused, so a misspelt "wieghts" is an error instead of silent unit
// weights. Numbers are written in the shortest form that parses back to the
// same float32.
package cloudjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// ErrSyntax is wrapped by errors about malformed JSON or a field of the
// wrong JSON type. Errors about values (overflow, ragged points) wrap
// wpcsim.ErrInvalidCloud instead.
var ErrSyntax = errors.New("cloudjson: malformed cloud")

// Record is one decoded JSON cloud.
type Record struct {
	ID    string
	Cloud wpcsim.Cloud
	// Attrs maps names to string, float64, bool, nil or []any values; nil
	// when absent.
	Attrs map[string]any
}

type rawRecord struct {
	ID      json.RawMessage `json:"id"`
	Weights json.RawMessage `json:"weights"`
	Points  json.RawMessage `json:"points"`
	Attrs   json.RawMessage `json:"attrs"`
}

// Decode parses one JSON cloud. Surrounding whitespace is allowed, anything
// else after the object is not. The cloud's shape and float32 range are
// checked (wpcsim.NewCloud64); the similarity's rules (zero points, limits)
// are the caller's, through wpcsim.Cloud.Validate.
func Decode(data []byte) (Record, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw rawRecord
	if err := dec.Decode(&raw); err != nil {
		return Record{}, syntaxErr(err)
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(data[off:])) > 0 {
		return Record{}, fmt.Errorf("%w: data after the cloud object at offset %d", ErrSyntax, off)
	}
	var r Record
	if isPresent(raw.ID) {
		if err := json.Unmarshal(raw.ID, &r.ID); err != nil {
			return Record{}, fmt.Errorf("%w: id: must be a string", ErrSyntax)
		}
		// encoding/json replaces invalid UTF-8 and lone surrogate escapes by
		// U+FFFD: two different IDs would become one and overwrite each
		// other. Refuse instead of rewriting.
		if !utf8.Valid(raw.ID) || strings.Count(r.ID, "\uFFFD") != countReplacementChars(raw.ID) {
			return Record{}, fmt.Errorf("%w: id: not valid UTF-8 (or a lone \\u surrogate escape)", ErrSyntax)
		}
	}
	var weights []float64
	if isPresent(raw.Weights) {
		s := scanner{src: raw.Weights}
		w, err := s.vector("weights")
		if err != nil {
			return Record{}, err
		}
		if weights = w; weights == nil {
			weights = []float64{}
		}
	}
	if !isPresent(raw.Points) {
		return Record{}, wpcsim.CloudError("points", "missing")
	}
	s := scanner{src: raw.Points}
	points, err := s.matrix("points")
	if err != nil {
		return Record{}, err
	}
	if r.Cloud, err = wpcsim.NewCloud64(weights, points); err != nil {
		return Record{}, err
	}
	if isPresent(raw.Attrs) {
		if r.Attrs, err = decodeAttrs(raw.Attrs); err != nil {
			return Record{}, err
		}
	}
	return r, nil
}

// countReplacementChars counts U+FFFD in a JSON string literal, written
// either as the character or as the escape \ufffd.
func countReplacementChars(lit []byte) int {
	n := bytes.Count(lit, []byte("\uFFFD"))
	for i := 0; i+6 <= len(lit); i++ {
		if lit[i] == '\\' {
			if i+1 < len(lit) && lit[i+1] == 'u' && strings.EqualFold(string(lit[i+2:i+6]), "fffd") {
				n++
			}
			i++ // skip the escaped character
		}
	}
	return n
}

func isPresent(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }

func syntaxErr(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: invalid JSON at offset %d: %v", ErrSyntax, se.Offset, se)
	case errors.As(err, &te):
		return fmt.Errorf("%w: %s: must be an object, not %s", ErrSyntax, te.Field, te.Value)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

// DecodeAttrs parses one JSON object of attributes, as the "attrs" field
// of a cloud holds (NumPy ingests read them one a line): names and strings
// that are not valid UTF-8 are refused, never rewritten, and nothing but
// whitespace may follow the object.
func DecodeAttrs(data []byte) (map[string]any, error) {
	return decodeAttrs(data)
}

// attrName formats an attribute name for an error message: a name of more
// than 64 bytes is cut (on a rune boundary) and its length given, so an
// error never echoes a megabyte name whole.
func attrName(k string) string {
	const keep = 64
	if len(k) <= keep {
		return k
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", k[:cut], len(k))
}

func decodeAttrs(data []byte) (map[string]any, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: attrs: must be an object of strings, numbers, booleans, nulls and lists", ErrSyntax)
	}
	// As for IDs: encoding/json rewrites invalid UTF-8 and lone surrogate
	// escapes to U+FFFD, so that a name or string would read back other
	// than written (and two names could become one). Refuse them: the raw
	// bytes must be valid UTF-8, and every U+FFFD decoded must have been
	// written as one.
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: attrs: not valid UTF-8", ErrSyntax)
	}
	decoded := 0
	out := make(map[string]any, len(m))
	for k, v := range m {
		decoded += strings.Count(k, "\uFFFD")
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var val any
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("%w: attrs.%s: %v", ErrSyntax, attrName(k), err)
		}
		list, ok := val.([]any)
		if !ok {
			x, err := attrScalar(val, true)
			if err != nil {
				return nil, fmt.Errorf("%w: attrs.%s: %v", ErrSyntax, attrName(k), err)
			}
			decoded += countFFFD(x)
			out[k] = x
			continue
		}
		for i, e := range list {
			x, err := attrScalar(e, false)
			if err != nil {
				return nil, fmt.Errorf("%w: attrs.%s[%d]: %v", ErrSyntax, attrName(k), i, err)
			}
			decoded += countFFFD(x)
			list[i] = x
		}
		out[k] = list
	}
	if decoded != countReplacementChars(data) {
		return nil, fmt.Errorf("%w: attrs: a lone \\u surrogate escape (not valid UTF-8)", ErrSyntax)
	}
	return out, nil
}

// countFFFD counts U+FFFD in a decoded string value (0 for other values).
func countFFFD(v any) int {
	if s, ok := v.(string); ok {
		return strings.Count(s, "\uFFFD")
	}
	return 0
}

// attrScalar converts a decoded JSON value that is not an array: strings,
// booleans, numbers (to float64) and, outside lists, null.
func attrScalar(val any, nullOK bool) (any, error) {
	switch x := val.(type) {
	case string, bool:
		return x, nil
	case nil:
		if nullOK {
			return nil, nil
		}
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s does not fit float64", x)
		}
		return f, nil
	}
	if !nullOK {
		return nil, fmt.Errorf("a list holds strings, numbers and booleans, got %s", jsonKind(val))
	}
	return nil, fmt.Errorf("value must be a string, number, boolean, null or a list of those, got %s", jsonKind(val))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// scanner reads arrays of JSON numbers that encoding/json has already
// checked for syntax, naming each bad value by its index.
type scanner struct {
	src []byte
	pos int
}

func (s *scanner) skip() {
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.skip()
	if s.pos < len(s.src) {
		return s.src[s.pos]
	}
	return 0
}

// matrix reads an array of arrays of numbers.
func (s *scanner) matrix(field string) ([][]float64, error) {
	if s.peek() != '[' {
		return nil, fmt.Errorf("%w: %s: must be an array of arrays of numbers", ErrSyntax, field)
	}
	s.pos++
	var rows [][]float64
	if s.peek() == ']' {
		s.pos++
		return rows, nil
	}
	for i := 0; ; i++ {
		row, err := s.vector(field + "[" + strconv.Itoa(i) + "]")
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return rows, nil
		default:
			return nil, fmt.Errorf("%w: %s: malformed array", ErrSyntax, field)
		}
	}
}

// vector reads an array of numbers.
func (s *scanner) vector(field string) ([]float64, error) {
	if s.peek() != '[' {
		return nil, fmt.Errorf("%w: %s: must be an array of numbers", ErrSyntax, field)
	}
	s.pos++
	var out []float64
	if s.peek() == ']' {
		s.pos++
		return out, nil
	}
	for k := 0; ; k++ {
		s.skip()
		start := s.pos
		for s.pos < len(s.src) && isNumberByte(s.src[s.pos]) {
			s.pos++
		}
		tok := string(s.src[start:s.pos])
		if tok == "" {
			return nil, fmt.Errorf("%w: %s[%d]: must be a number", ErrSyntax, field, k)
		}
		v, err := strconv.ParseFloat(tok, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("%w: %s[%d]: %q is not a number", ErrSyntax, field, k, tok)
		}
		if math.IsInf(v, 0) {
			// Beyond float64: report it as the float32 overflow it also is.
			// (An underflow parses as 0 with ErrRange and is kept as 0.)
			return nil, wpcsim.CloudError(fmt.Sprintf("%s[%d]", field, k), "value %s overflows float32", tok)
		}
		out = append(out, v)
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return out, nil
		default:
			return nil, fmt.Errorf("%w: %s[%d]: must be a number", ErrSyntax, field, k+1)
		}
	}
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// AppendJSON appends r as one line of JSON (no newline) to dst. Floats are
// written so that they parse back to the same float32. r.Cloud must be well
// formed (Validate it first): NaN and Inf have no JSON form.
func AppendJSON(dst []byte, r Record) []byte {
	dst = append(dst, '{')
	if r.ID != "" {
		dst = append(dst, `"id":`...)
		dst = appendString(dst, r.ID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"weights":`...)
	dst = appendFloats(dst, r.Cloud.Weights)
	dst = append(dst, `,"points":[`...)
	for i := 0; i < r.Cloud.Len(); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendFloats(dst, r.Cloud.Point(i))
	}
	dst = append(dst, ']')
	if len(r.Attrs) > 0 {
		dst = append(dst, `,"attrs":{`...)
		keys := make([]string, 0, len(r.Attrs))
		for k := range r.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			switch v := r.Attrs[k].(type) {
			case string:
				dst = appendString(dst, v)
			case bool:
				dst = strconv.AppendBool(dst, v)
			case float64:
				dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
			default:
				b, _ := json.Marshal(v)
				dst = append(dst, b...)
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // never fails for a string
	return append(dst, b...)
}

func appendFloats(dst []byte, v []float32) []byte {
	dst = append(dst, '[')
	for i, f := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendFloat(dst, float64(f), 'g', -1, 32)
	}
	return append(dst, ']')
}
