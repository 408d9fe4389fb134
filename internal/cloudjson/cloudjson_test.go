package cloudjson

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wpcdb/wpcdb/wpcsim"
)

func TestDecode(t *testing.T) {
	r, err := Decode([]byte(` {"id":"a","weights":[1.5,-2],"points":[[1,2],[3,4e-3]],"attrs":{"color":"red","year":2021,"ok":true}} ` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Record{
		ID:    "a",
		Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1.5, -2}, Points: []float32{1, 2, 3, 4e-3}},
		Attrs: map[string]any{"color": "red", "year": 2021.0, "ok": true},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	r, err = Decode([]byte(`{"points":[[1],[2],[3]]}`))
	if err != nil || r.ID != "" || !reflect.DeepEqual(r.Cloud.Weights, []float32{1, 1, 1}) || r.Attrs != nil {
		t.Fatalf("weights default: %+v %v", r, err)
	}
	r, err = Decode([]byte(`{"points":[[1e-400, 2]], "weights": null}`))
	if err != nil || r.Cloud.Points[0] != 0 {
		t.Fatalf("underflow must read as 0: %+v %v", r, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		cloud    bool // wraps wpcsim.ErrInvalidCloud rather than ErrSyntax
	}{
		{`{"points":[[1,2],[3]]}`, "points[1]: has 1 coordinates, point 0 has 2", true},
		{`{"points":[]}`, "points: cloud has no points", true},
		{`{"weights":[1]}`, "points: missing", true},
		{`{"points":[[1,2]],"weights":[1,2]}`, "weights: 2 weights for 1 points", true},
		{`{"points":[[1,2]],"weights":[]}`, "weights: 0 weights for 1 points", true},
		{`{"points":[[1,4e38]]}`, "points[0][1]: value 4e+38 overflows float32", true},
		{`{"points":[[1,1e400]]}`, "points[0][1]: value 1e400 overflows float32", true},
		{`{"points":[[1]],"weights":[-1e39]}`, "weights[0]: value -1e+39 overflows float32", true},
		{`{"points":[[1,"2"]]}`, `points[0][1]: must be a number`, false},
		{`{"points":[[1,null]]}`, `points[0][1]: must be a number`, false},
		{`{"points":[1,2]}`, `points[0]: must be an array of numbers`, false},
		{`{"points":{"a":1}}`, `points: must be an array of arrays`, false},
		{`{"points":[[1]],"weights":"x"}`, `weights: must be an array of numbers`, false},
		{`{"points":[[1]],"wieghts":[1]}`, `unknown field "wieghts"`, false},
		{`{"points":[[1]],"id":7}`, `id: must be a string`, false},
		{`{"points":[[1]],"attrs":{"a":[1, [2]]}}`, `attrs.a[1]: a list holds strings, numbers and booleans, got an array`, false},
		{`{"points":[[1]],"attrs":{"a":["x", null]}}`, `attrs.a[1]: a list holds strings, numbers and booleans, got null`, false},
		{`{"points":[[1]],"attrs":{"a":{"b":1}}}`, `attrs.a: value must be a string, number, boolean, null or a list of those, got an object`, false},
		{`{"points":[[1]],"attrs":{"a":[1e999]}}`, `attrs.a[0]: number 1e999 does not fit float64`, false},
		{`{"points":[[1]],"attrs":[1]}`, `attrs: must be an object`, false},
		{`{"points":[[1]]} {}`, `data after the cloud object`, false},
		{`{"points":[[1]]}}`, `data after the cloud object`, false},
		{`{"points":[[1]]}]x`, `data after the cloud object`, false},
		{`{"points":[[1]]} garbage`, `data after the cloud object`, false},
		{"{\"points\":[[1]],\"id\":\"a\xffb\"}", `id: not valid UTF-8`, false},
		{`{"points":[[1]],"id":"a\ud800b"}`, `id: not valid UTF-8`, false},
		{`{"points":[[1]]`, `malformed cloud`, false},
		{`[1]`, `must be an object`, false},
		{``, `malformed cloud`, false},
	} {
		_, err := Decode([]byte(tc.in))
		if err == nil {
			t.Errorf("Decode(%s): no error", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s): %q does not contain %q", tc.in, err, tc.want)
		}
		if tc.cloud != errors.Is(err, wpcsim.ErrInvalidCloud) || tc.cloud == errors.Is(err, ErrSyntax) {
			t.Errorf("Decode(%s): wrong error class: %v", tc.in, err)
		}
	}
}

// TestDecodeReplacementCharID: an ID that really holds U+FFFD (as the
// character or as an escape) is kept, not taken for a rewritten one.
func TestDecodeReplacementCharID(t *testing.T) {
	for _, in := range []string{`{"points":[[1]],"id":"a\ufffd"}`, "{\"points\":[[1]],\"id\":\"a\uFFFD\"}", `{"points":[[1]],"id":"a\\ufffd"}`} {
		r, err := Decode([]byte(in))
		if err != nil {
			t.Errorf("Decode(%s): %v", in, err)
			continue
		}
		if r.ID == "" {
			t.Errorf("Decode(%s): empty id", in)
		}
	}
}

// TestDecodeAttrsNotUTF8: attribute names and strings that are not valid
// UTF-8 (raw bytes or lone surrogate escapes) are refused, not rewritten to
// U+FFFD; one that really holds U+FFFD is kept.
func TestDecodeAttrsNotUTF8(t *testing.T) {
	for _, in := range []string{
		"{\"points\":[[1]],\"attrs\":{\"s\":\"a\xffb\"}}",
		"{\"points\":[[1]],\"attrs\":{\"l\":[\"x\",\"\xfe\"]}}",
		"{\"points\":[[1]],\"attrs\":{\"n\xff\":1}}",
		`{"points":[[1]],"attrs":{"s":"a\ud800"}}`,
		`{"points":[[1]],"attrs":{"\udc00":true}}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("Decode(%q): %v, want a UTF-8 error", in, err)
		}
	}
	for _, in := range []string{`{"points":[[1]],"attrs":{"s":"a\ufffd","l":["\uFFFD"]}}`, "{\"points\":[[1]],\"attrs\":{\"\uFFFD\":\"\uFFFD\"}}"} {
		if r, err := Decode([]byte(in)); err != nil || len(r.Attrs) == 0 {
			t.Errorf("Decode(%s): %+v %v", in, r.Attrs, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	vals := []float32{0, float32(math.Copysign(0, -1)), 1, -1.5, math.MaxFloat32, math.SmallestNonzeroFloat32, 0.1, 1.0 / 3, 16777217, 3.4e-20}
	c := wpcsim.Cloud{Dim: 2, Weights: vals[:5], Points: vals}
	r := Record{ID: "q\"\n✓", Cloud: c, Attrs: map[string]any{"b": false, "n": -0.25, "s": "x\\y", "z": nil, "l": []any{"a", 1.5, true}, "e": []any{}}}
	line := AppendJSON(nil, r)
	back, err := Decode(line)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if !sameRecord(back, r) {
		t.Fatalf("round trip changed the record:\n%s\n%+v", line, back)
	}
}

func sameRecord(a, b Record) bool {
	if a.ID != b.ID || a.Cloud.Dim != b.Cloud.Dim || !reflect.DeepEqual(a.Attrs, b.Attrs) && (len(a.Attrs) > 0 || len(b.Attrs) > 0) {
		return false
	}
	return sameBits(a.Cloud.Weights, b.Cloud.Weights) && sameBits(a.Cloud.Points, b.Cloud.Points)
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","weights":[1,-2],"points":[[1,2],[3,4]],"attrs":{"c":"r","y":2021,"t":true}}`,
		`{"points":[[1e-45]]}`,
		`{"points":[[1,2],[3]]}`,
		`{"points":[[3.4028235e38, -0]], "weights":[1e-7]}`,
		`{"points":[[1]],"attrs":{"a":{"b":1}}}`,
		`{"points":[[ 1 , 2 ]] , "id" : "x" }`,
		`{"points":[[1]]}}`,
		"{\"points\":[[1]],\"id\":\"a\xffb\"}",
		`{"points":[[1]],"id":"a\ud800\ufffd"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, wpcsim.ErrInvalidCloud) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if !utf8.ValidString(r.ID) || strings.Count(r.ID, "\uFFFD") > strings.Count(strings.ToLower(string(data)), `\ufffd`)+bytes.Count(data, []byte("\uFFFD")) {
			t.Fatalf("decoded ID %q was rewritten", r.ID)
		}
		if r.Cloud.Dim <= 0 || len(r.Cloud.Points) != r.Cloud.Dim*r.Cloud.Len() {
			t.Fatalf("decoded a malformed cloud: %+v", r.Cloud)
		}
		line := AppendJSON(nil, r)
		back, err := Decode(line)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", line, err)
		}
		if !sameRecord(back, r) {
			t.Fatalf("round trip changed %s", line)
		}
	})
}
