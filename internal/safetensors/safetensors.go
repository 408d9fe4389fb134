// Package safetensors reads float tensors from .safetensors files, the
// format model weights are commonly exported in.
//
// # Format
//
//	offset  size  content
//	0       8     header length N, little-endian uint64
//	8       N     header: a JSON object mapping each tensor name to
//	              {"dtype": "F32"|"F16"|"BF16"|..., "shape": [...],
//	               "data_offsets": [begin, end]}, plus an optional
//	              "__metadata__" object of strings
//	8+N     ...   the data buffer; a tensor's bytes are buffer[begin:end],
//	              little-endian, row-major
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("safetensors: malformed file")

const maxHeader = 100 << 20

// Tensor is one decoded tensor, widened to float32.
type Tensor struct {
	Shape []int
	Data  []float32
}

type entry struct {
	Dtype   string  `json:"dtype"`
	Shape   []int   `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// Names lists the tensors of the file at path, sorted.
func Names(path string) ([]string, error) {
	h, _, err := readHeader(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range h {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func readHeader(path string) (map[string]entry, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("%w: %s: %d bytes is too short", ErrFormat, path, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("%w: %s: header length %d does not fit the file", ErrFormat, path, n)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: header: %v", ErrFormat, path, err)
	}
	h := map[string]entry{}
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: tensor %q: %v", ErrFormat, path, name, err)
		}
		h[name] = e
	}
	return h, b[8+n:], nil
}

// Read returns the named tensor of the file at path (F32, F16 or BF16).
func Read(path, name string) (Tensor, error) {
	h, buf, err := readHeader(path)
	if err != nil {
		return Tensor{}, err
	}
	e, ok := h[name]
	if !ok {
		var names []string
		for n := range h {
			names = append(names, n)
		}
		slices.Sort(names)
		return Tensor{}, fmt.Errorf("safetensors: %s has no tensor %q (it has %v)", path, name, names)
	}
	size := map[string]int{"F32": 4, "F16": 2, "BF16": 2}[e.Dtype]
	if size == 0 {
		return Tensor{}, fmt.Errorf("safetensors: %s: tensor %q has dtype %s (want F32, F16 or BF16)", path, name, e.Dtype)
	}
	count := 1
	for _, d := range e.Shape {
		if d < 0 || d > 0 && count > math.MaxInt32/d {
			return Tensor{}, fmt.Errorf("%w: %s: tensor %q has shape %v", ErrFormat, path, name, e.Shape)
		}
		count *= d
	}
	if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] > int64(len(buf)) || e.Offsets[1]-e.Offsets[0] != int64(count*size) {
		return Tensor{}, fmt.Errorf("%w: %s: tensor %q: offsets %v do not hold %v %s values in a buffer of %d bytes", ErrFormat, path, name, e.Offsets, e.Shape, e.Dtype, len(buf))
	}
	data := buf[e.Offsets[0]:e.Offsets[1]]
	out := Tensor{Shape: e.Shape, Data: make([]float32, count)}
	switch e.Dtype {
	case "F32":
		for i := range out.Data {
			out.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	default:
		half := make([]uint16, count)
		for i := range half {
			half[i] = binary.LittleEndian.Uint16(data[2*i:])
		}
		if e.Dtype == "F16" {
			simd.F16ToF32(out.Data, half)
		} else {
			simd.BF16ToF32(out.Data, half)
		}
	}
	return out, nil
}

// WriteF32 writes float32 tensors as a .safetensors file (tests use it).
func WriteF32(path string, tensors map[string]Tensor) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	header := map[string]entry{}
	var data []byte
	for _, n := range names {
		t := tensors[n]
		begin := int64(len(data))
		for _, v := range t.Data {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
		header[n] = entry{Dtype: "F32", Shape: t.Shape, Offsets: []int64{begin, int64(len(data))}}
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	out = append(append(out, hj...), data...)
	return os.WriteFile(path, out, 0o644)
}
