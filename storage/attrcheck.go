package storage

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// The validation of attributes, before they are written.

// CheckAttrs validates attribute names and values: names 1–256 bytes;
// values strings (≤ 64 KiB), finite float64 numbers, booleans, nil (null)
// or lists ([]any) of at most MaxAttrListLength strings, numbers and
// booleans; at most MaxAttrsBytes in all, as stored.
func CheckAttrs(attrs map[string]any) error {
	total := 0
	for name, v := range attrs {
		if name == "" || len(name) > MaxAttrNameLength {
			return invalidItem("attrs", "name %s must be 1 to %d bytes", QuoteID(name), MaxAttrNameLength)
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
