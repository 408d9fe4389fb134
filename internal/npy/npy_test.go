package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// file builds a .npy file by hand: version, dict text (padded to NumPy's
// 64-byte alignment) and raw data.
func file(major byte, dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	b.Write([]byte{major, 0})
	lenSize := 2
	if major > 1 {
		lenSize = 4
	}
	pad := (64 - (6+2+lenSize+len(dict)+1)%64) % 64
	hdr := dict + strings.Repeat(" ", pad) + "\n"
	if lenSize == 2 {
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(hdr))))
	} else {
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(hdr))))
	}
	b.WriteString(hdr)
	b.Write(data)
	return b.Bytes()
}

func f32bytes(v ...float32) []byte {
	var out []byte
	for _, x := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

// The header NumPy writes for np.save("x.npy", np.zeros((2, 3), "<f4")).
const numpyDict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"

func TestWriteMatchesNumPy(t *testing.T) {
	data := []float32{1, 2, 3, 4, 5, 6}
	var got bytes.Buffer
	if err := WriteFloat32(&got, []int{2, 3}, data); err != nil {
		t.Fatal(err)
	}
	want := file(1, numpyDict, f32bytes(data...))
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("WriteFloat32 wrote\n%q\nwant NumPy's\n%q", got.Bytes(), want)
	}
	if got.Len()-4*len(data) != 128 {
		t.Errorf("data starts at %d, want 128 (64-byte aligned)", got.Len()-4*len(data))
	}
}

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{}, {0}, {5}, {1, 5}, {2, 3}, {2, 1, 3}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.5 - 1
		}
		var buf bytes.Buffer
		if err := WriteFloat32(&buf, shape, data); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(&buf)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if r.Header.Descr != "<f4" || r.Header.Fortran || !slices.Equal(r.Header.Shape, shape) {
			t.Errorf("shape %v: header %+v", shape, r.Header)
		}
		got, err := r.ReadFloat32(0)
		if err != nil || !slices.Equal(got, data) {
			t.Errorf("shape %v: read %v, %v; want %v", shape, got, err, data)
		}
	}
	if err := WriteFloat32(&bytes.Buffer{}, []int{2, 2}, []float32{1}); err == nil {
		t.Error("WriteFloat32 accepted 1 value for shape (2, 2)")
	}
}

func TestReadHeaderVariants(t *testing.T) {
	cases := []struct {
		major byte
		dict  string
		want  Header
	}{
		{1, numpyDict, Header{"<f4", false, []int{2, 3}}},
		{2, numpyDict, Header{"<f4", false, []int{2, 3}}},
		{3, numpyDict, Header{"<f4", false, []int{2, 3}}},
		{1, `{"shape": (6,), "descr": "<f4", "fortran_order": True}`, Header{"<f4", true, []int{6}}},
		{1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", Header{"<f8", false, []int{}}},
		{1, "{'descr':'<f4','fortran_order':False,'shape':(2,3,)}", Header{"<f4", false, []int{2, 3}}},
	}
	for _, tc := range cases {
		r, err := NewReader(bytes.NewReader(file(tc.major, tc.dict, nil)))
		if err != nil {
			t.Errorf("v%d %s: %v", tc.major, tc.dict, err)
			continue
		}
		if r.Header.Descr != tc.want.Descr || r.Header.Fortran != tc.want.Fortran || !slices.Equal(r.Header.Shape, tc.want.Shape) {
			t.Errorf("v%d %s: header %+v, want %+v", tc.major, tc.dict, r.Header, tc.want)
		}
	}
}

func TestReadErrors(t *testing.T) {
	six := f32bytes(1, 2, 3, 4, 5, 6)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "reading magic"},
		{"magic", append([]byte("\x93NUMPZ\x01\x00"), file(1, numpyDict, six)[8:]...), "bad magic"},
		{"version", file(4, numpyDict, six), "unsupported version 4.0"},
		{"short header", file(1, numpyDict, six)[:40], "reading 118-byte header"},
		{"huge header", append([]byte(Magic+"\x02\x00"), binary.LittleEndian.AppendUint32(nil, 1<<30)...), "exceeds"},
		{"not a dict", file(1, "[1, 2]", six), "does not start with"},
		{"unknown key", file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", six), `unknown key "x"`},
		{"duplicate", file(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", six), `duplicate key "descr"`},
		{"missing shape", file(1, "{'descr': '<f4', 'fortran_order': False}", six), "missing key shape"},
		{"structured", file(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", six), "structured"},
		{"fortran value", file(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}", six), "fortran_order is not"},
		{"shape (6)", file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", six), "shape is not a tuple"},
		{"negative", file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", six), "shape is not a tuple"},
		{"trailing text", file(1, numpyDict+" x", six), "text after the dict"},
		{"65 dimensions", file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ("+strings.Repeat("1, ", 64)+"6)}", six), "at most 64"},
		// Errors quote at most 64 bytes of an oversized header, key or dtype.
		{"900 KB header not echoed", file(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': '"+strings.Repeat("A", 900_000)+"'}", six), "bytes): unknown key \"x\""},
		{"900 KB key not echoed", file(2, "{'"+strings.Repeat("k", 900_000)+"': 1}", six), "(900000 bytes)"},
	}
	for _, tc := range cases {
		_, err := NewReader(bytes.NewReader(tc.file))
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %.300v, want ErrFormat saying %q", tc.name, err, tc.want)
		}
		if err != nil && len(err.Error()) > 1024 {
			t.Errorf("%s: %d-byte error message", tc.name, len(err.Error()))
		}
	}

	data := []struct {
		name string
		file []byte
		want string
	}{
		{"f8", file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", six), `dtype "<f8"`},
		{"900 KB dtype not echoed", file(2, "{'descr': '"+strings.Repeat("d", 900_000)+"', 'fortran_order': False, 'shape': (3,)}", six), "(900000 bytes), want"},
		{"big endian", file(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,)}", six), `dtype ">f4"`},
		{"short data", file(1, numpyDict, six[:20]), "data ends after 5 of 6"},
		{"trailing data", file(1, numpyDict, append(six, 0)), "trailing bytes"},
		{"too large", file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000)}", six), "too large"},
		{"overflow", file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 2)}", six), "too large"},
	}
	for _, tc := range data {
		r, err := NewReader(bytes.NewReader(tc.file))
		if err != nil {
			t.Errorf("%s: header: %v", tc.name, err)
			continue
		}
		_, err = r.ReadFloat32(1000)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadFloat32 error %.300v, want ErrFormat saying %q", tc.name, err, tc.want)
		}
		if err != nil && len(err.Error()) > 1024 {
			t.Errorf("%s: %d-byte error message", tc.name, len(err.Error()))
		}
	}
}

func TestCheckFileSize(t *testing.T) {
	six := f32bytes(1, 2, 3, 4, 5, 6)
	for _, tc := range []struct {
		name, dict string
		data       []byte
		want       string // "" = fits
	}{
		{"exact", numpyDict, six, ""},
		{"v2", numpyDict, six, ""},
		{"short", numpyDict, six[:20], "needs 24 bytes of data, the file has 20"},
		{"long", numpyDict, append(six, 0), "needs 24 bytes of data, the file has 25"},
		{"overflow", "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 9223372036854775807, 3)}", six, "overflows"},
		{"overflow bytes", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4611686018427387904, 4)}", six, "overflows"},
		{"int64 lengths", "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}", six, ""},
		{"f8", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", six, "unsupported dtype"},
	} {
		major := byte(1)
		if tc.name == "v2" {
			major = 2
		}
		f := file(major, tc.dict, tc.data)
		r, err := NewReader(bytes.NewReader(f))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = r.CheckFileSize(int64(len(f)))
		if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: CheckFileSize: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// maxErrorBytes bounds an error message about a header: it quotes at most
// 64 bytes of the header, a key or the dtype, and prints a shape of at most
// 64 dimensions (each up to 19 digits).
const maxErrorBytes = 2048

// FuzzNewReader: any bytes give a header or ErrFormat (of at most
// maxErrorBytes), never a panic, and a header that passes CheckFileSize
// can be read whole.
func FuzzNewReader(f *testing.F) {
	six := f32bytes(1, 2, 3, 4, 5, 6)
	f.Add(file(1, numpyDict, six))
	f.Add(file(2, numpyDict, six))
	f.Add(file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 9223372036854775807, 3)}", six))
	f.Add(file(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}", six))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			if len(err.Error()) > maxErrorBytes {
				t.Fatalf("%d-byte error message: %.200s", len(err.Error()), err)
			}
			return
		}
		if r.DataOffset > int64(len(b)) {
			t.Fatalf("data offset %d past the %d-byte file", r.DataOffset, len(b))
		}
		if err := r.CheckFileSize(int64(len(b))); err != nil {
			if len(err.Error()) > maxErrorBytes {
				t.Fatalf("%d-byte error message: %.200s", len(err.Error()), err)
			}
			return
		}
		n, _ := r.Header.Len()
		if r.Header.Descr == "<f4" || r.Header.Descr == "<f2" {
			if err := r.ReadFloats(make([]float32, n)); err != nil {
				t.Fatalf("shape %s passed CheckFileSize but: %v", r.Header.ShapeString(), err)
			}
		} else if _, err := r.ReadInts(n); err != nil {
			t.Fatalf("shape %s passed CheckFileSize but: %v", r.Header.ShapeString(), err)
		}
		if err := r.Done(); err != nil {
			t.Fatal(err)
		}
	})
}
