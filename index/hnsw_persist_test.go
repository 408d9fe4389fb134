package index

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

func TestHNSWPersistRoundTrip(t *testing.T) {
	const seed = 21
	t.Logf("seed %d", seed)
	n := 1500
	if testing.Short() {
		n = 600
	}
	ts := newTestSet(seed, n, 16, 20, 30)
	for _, codes := range []bool{false, true} {
		for _, m := range []Metric{InnerProduct, Cosine, L2} {
			testPersistRoundTrip(t, ts, seed, m, codes)
		}
	}
}

func testPersistRoundTrip(t *testing.T, ts *testSet, seed uint64, m Metric, codes bool) {
	n := len(ts.ids)
	rng := rand.New(rand.NewPCG(seed, 4))
	{
		h, err := NewHNSW(16, m, HNSWOptions{Seed: seed, M: 8, EfConstruction: 100})
		if err != nil {
			t.Fatal(err)
		}
		if codes {
			h.dropVectors()
		}
		for _, id := range ts.ids {
			h.Add(id, ts.vecs[id])
		}
		// Tombstones, a repair (free slots) and more tombstones.
		for i, pi := range rng.Perm(n)[:n*4/10] {
			h.Delete(ts.ids[pi])
			if i%5 == 0 {
				h.Add(uint32(1_000_000+i), ts.vecs[ts.ids[pi]])
			}
		}
		if len(h.free) == 0 || h.deleted == 0 {
			t.Fatalf("%s: want free slots and tombstones, have %d and %d", m, len(h.free), h.deleted)
		}
		if empty, err := LoadHNSW(memPersister{}); empty != nil || err != nil {
			t.Fatalf("nothing saved: %v %v", empty, err)
		}
		p := memPersister{}
		if err := h.Save(p); err != nil {
			t.Fatal(err)
		}
		g, err := LoadHNSW(p)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if g.Len() != h.Len() || g.Dim() != h.Dim() || g.Options() != h.Options() || g.metric != m || g.CodesOnly() != codes {
			t.Fatalf("%s: loaded len %d dim %d opts %+v codes only %v", m, g.Len(), g.Dim(), g.Options(), g.CodesOnly())
		}
		filter := roaring.New()
		for id := range h.slot {
			if id%4 == 0 {
				filter.Add(id)
			}
		}
		same := func(stage string) {
			t.Helper()
			for _, q := range ts.qs {
				for _, fl := range []*roaring.Bitmap{nil, filter} {
					for _, ef := range []int{0, 10} {
						a, _ := h.Search(q, 10, fl, Params{Ef: ef})
						b, _ := g.Search(q, 10, fl, Params{Ef: ef})
						if !reflect.DeepEqual(a, b) {
							t.Fatalf("%s %s: results differ:\n%v\n%v", m, stage, a, b)
						}
					}
				}
			}
		}
		same("after load")
		// The level generator and free slots were restored too: the same
		// adds and deletes keep the two identical.
		for i := 0; i < n/3; i++ {
			id, v := uint32(2_000_000+i), ts.vecs[ts.ids[i]]
			h.Add(id, v)
			g.Add(id, v)
			if i%2 == 0 {
				h.Delete(ts.ids[i])
				g.Delete(ts.ids[i])
			}
		}
		same("after more adds")
		pa, pb := memPersister{}, memPersister{}
		h.Save(pa)
		g.Save(pb)
		if !reflect.DeepEqual(pa, pb) {
			t.Errorf("%s: the two indexes save different blobs", m)
		}
	}
}

func savedBlob(t *testing.T, codes bool) []byte {
	t.Helper()
	ts := newTestSet(1, 60, 3, 4, 0)
	h, _ := NewHNSW(3, L2, HNSWOptions{Seed: 1, M: 4})
	if codes {
		h.dropVectors()
	}
	for _, id := range ts.ids {
		h.Add(id, ts.vecs[id])
	}
	for _, id := range ts.ids[:20] {
		h.Delete(id)
	}
	p := memPersister{}
	if err := h.Save(p); err != nil {
		t.Fatal(err)
	}
	return p[hnswBlobName]
}

func TestHNSWLoadCorrupt(t *testing.T) {
	for _, codes := range []bool{false, true} {
		testLoadCorrupt(t, savedBlob(t, codes))
	}
}

func testLoadCorrupt(t *testing.T, blob []byte) {
	load := func(b []byte) error {
		_, err := LoadHNSW(memPersister{hnswBlobName: b})
		return err
	}
	if err := load(blob); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(blob); n++ {
		if err := load(blob[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v", n, len(blob), err)
		}
	}
	for i := range blob {
		b := append([]byte(nil), blob...)
		b[i] ^= 0x10
		if err := load(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit flipped at byte %d: %v", i, err)
		}
	}
	if err := load(append(append([]byte(nil), blob...), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a byte appended: %v", err)
	}
}

// TestHNSWDecodeMutated feeds decodeHNSW bodies with valid checksums but
// mutated structure: truncations, byte changes and large values at every
// offset. Each must decode or fail with ErrCorrupt, never panic, and a
// decoded graph must be searchable.
func TestHNSWDecodeMutated(t *testing.T) {
	for _, codes := range []bool{false, true} {
		testDecodeMutated(t, savedBlob(t, codes))
	}
}

func testDecodeMutated(t *testing.T, blob []byte) {
	body := blob[:len(blob)-4]
	check := func(b []byte) {
		t.Helper()
		h, err := decodeHNSW(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		for i := 0; i < 3; i++ {
			h.Search([]float32{float32(i), 1, -1}, 5, nil, Params{})
		}
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range body {
		check(body[:i])
		for _, v := range []byte{0, 1, 2, 0x7f, 0xff, body[i] + 1, body[i] - 1, byte(rng.Uint32())} {
			b := append([]byte(nil), body...)
			b[i] = v
			check(b)
		}
	}
}

func FuzzDecodeHNSW(f *testing.F) {
	ts := newTestSet(1, 30, 3, 4, 0)
	h, _ := NewHNSW(3, Cosine, HNSWOptions{M: 2, Seed: 3})
	for _, id := range ts.ids {
		h.Add(id, ts.vecs[id])
	}
	p := memPersister{}
	h.Save(p)
	f.Add(p[hnswBlobName])
	f.Fuzz(func(t *testing.T, b []byte) {
		// Fix the checksum up so that the structural checks are reached.
		if len(b) >= 4 {
			binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
		}
		g, err := LoadHNSW(memPersister{hnswBlobName: b})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		if g != nil {
			g.Search([]float32{1, 0, 0}, 3, nil, Params{})
		}
	})
}

// TestHNSWLoadV1 reads a graph in the format of version 1 (no mode byte,
// float32 vectors): it loads, keeps its vectors and searches as saved.
func TestHNSWLoadV1(t *testing.T) {
	ts := newTestSet(5, 300, 8, 6, 10)
	h, _ := buildBoth(t, ts, 8, InnerProduct, HNSWOptions{Seed: 5, M: 6})
	p := memPersister{}
	if err := h.Save(p); err != nil {
		t.Fatal(err)
	}
	v2 := p[hnswBlobName]
	if v2[1] != hnswFormatV2 || v2[3] != 0 {
		t.Fatalf("saved version %d mode %d", v2[1], v2[3])
	}
	v1 := append([]byte{hnswMagic, hnswFormatV1, v2[2]}, v2[4:len(v2)-4]...)
	v1 = binary.LittleEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	g, err := LoadHNSW(memPersister{hnswBlobName: v1})
	if err != nil {
		t.Fatal(err)
	}
	if g.CodesOnly() || g.Len() != h.Len() {
		t.Fatalf("v1 loaded with codes only %v, %d nodes of %d", g.CodesOnly(), g.Len(), h.Len())
	}
	for _, q := range ts.qs {
		a, _ := h.Search(q, 10, nil, Params{})
		b, _ := g.Search(q, 10, nil, Params{})
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("results differ:\n%v\n%v", a, b)
		}
	}
}
