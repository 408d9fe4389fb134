package pointindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestPersist: a read-back index over the same store, synced, answers
// every search as the written one;
// damaged bytes, truncations and structurally wrong bodies with a valid
// checksum give ErrCorrupt, never a panic.
func TestPersist(t *testing.T) {
	const seed = 5
	t.Logf("seed %d", seed)
	c := newCorpus(seed, 150, 12, 3, 12)
	x, err := Build(c.d, c.source(), Options{Seed: seed, Centroids: 16})
	if err != nil {
		t.Fatal(err)
	}
	x.Delete(3)
	var buf bytes.Buffer
	n, err := x.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo: %d bytes, buffer %d, %v", n, buf.Len(), err)
	}
	saved := buf.Bytes()
	y, err := Read(bytes.NewReader(saved), int64(len(saved)), x.store)
	if err != nil {
		t.Fatal(err)
	}
	live := roaring.New()
	for i := range c.items {
		if i != 3 {
			live.Add(uint32(i))
		}
	}
	if err := y.Sync(live, func(iid uint32) (wpcsim.Cloud, bool, error) {
		t.Fatalf("item %d added again", iid)
		return wpcsim.Cloud{}, false, nil
	}); err != nil {
		t.Fatal(err)
	}
	if x.Stats() != y.Stats() {
		t.Fatalf("stats %+v, read back %+v", x.Stats(), y.Stats())
	}
	rng := wpctest.NewRand(seed)
	for range 5 {
		q := c.cloud(rng, 4, true)
		a, _ := x.Search(q, 20, nil, Params{})
		b, _ := y.Search(q, 20, nil, Params{})
		if !slices.Equal(a, b) {
			t.Fatalf("read back answers %v, written %v", b, a)
		}
	}

	corrupt := func(what string, b []byte) {
		t.Helper()
		if _, err := Read(bytes.NewReader(b), int64(len(b)), nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", what, err)
		}
	}
	for _, cut := range []int{0, 3, 4, 20, len(saved) / 2, len(saved) - 1} {
		corrupt("truncated", saved[:cut])
	}
	for i := 0; i < len(saved); i += 1 + len(saved)/97 {
		b := slices.Clone(saved)
		b[i] ^= 0x41
		corrupt("flipped byte", b)
	}
	// Valid checksums over wrong structure: every 4-byte word of the
	// head set to a huge count, and random bytes.
	resum := func(b []byte) []byte {
		body := b[:len(b)-4]
		return binary.LittleEndian.AppendUint32(slices.Clone(body), crc32.Checksum(body, castagnoli))
	}
	for i := 5; i+4 < len(saved)-4; i += 1 + len(saved)/61 {
		b := slices.Clone(saved)
		binary.LittleEndian.PutUint32(b[i:], 0xfffffff0)
		b = resum(b)
		if y, err := Read(bytes.NewReader(b), int64(len(b)), x.store); err == nil {
			// A float or code changed: harmless, and the index still
			// answers.
			q := c.cloud(rng, 4, false)
			if _, err := y.Search(q, 10, nil, Params{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	corrupt("extra bytes", resum(append(slices.Clone(saved[:len(saved)-4]), 1, 2, 3, 4, 0, 0, 0, 0)))
}
