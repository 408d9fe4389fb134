package storage

import (
	"testing"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FuzzDecodeRecord feeds arbitrary bytes to the item-record and attribute
// decoders: a damaged value must be ErrCorrupt, never a panic or an
// allocation sized by a damaged count. Seeds are valid records.
func FuzzDecodeRecord(f *testing.F) {
	c := wpcsim.Cloud{Dim: 3, Weights: []float32{1.5, -2}, Points: []float32{1, 2, 3, 4, 5, 6}}
	for _, e := range []collconfig.Encoding{collconfig.EncodingF32, collconfig.EncodingF16, collconfig.EncodingBF16} {
		f.Add(appendRecord(nil, e, "item-1", c, nil, wpcsim.Self{G: 1, Mass: 2}), uint8(e), uint8(3))
	}
	f.Add(encodeAttrs(map[string]any{"color": "red", "year": 2021.0, "ok": true}), uint8(0), uint8(0))
	f.Add([]byte{recordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint8(0), uint8(4))
	f.Fuzz(func(t *testing.T, b []byte, enc, dim uint8) {
		e := collconfig.Encoding(enc % 3)
		d := int(dim%64) + 1
		r, err := decodeRecord(b, e, d)
		id, cl := r.ID, r.Cloud
		if err == nil {
			if len(cl.Points) != len(cl.Weights)*d || len(id) > len(b) {
				t.Fatalf("decoded %d points, %d weights of dim %d from %d bytes", len(cl.Points), len(cl.Weights), d, len(b))
			}
			// What decodes must encode back to the same bytes.
			if got := appendRecord(nil, e, id, cl, nil, wpcsim.Self{}); len(got) != len(b) {
				t.Fatalf("re-encoded %d bytes, decoded from %d", len(got), len(b))
			}
		}
		if attrs, err := decodeAttrs(b); err == nil && len(attrs) > len(b) {
			t.Fatalf("%d attributes from %d bytes", len(attrs), len(b))
		}
	})
}
