package index

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"
	"testing/iotest"
)

// streamPersister streams blobs to and from a memPersister, reading back in
// one-byte pieces, as a BlobStreamer whose pages are small would.
type streamPersister struct{ memPersister }

type streamWriter struct {
	bytes.Buffer
	p    streamPersister
	name string
}

func (w *streamWriter) Close() error { return w.p.PutBlob(w.name, w.Bytes()) }

func (p streamPersister) CreateBlob(name string) (io.WriteCloser, error) {
	return &streamWriter{p: p, name: name}, nil
}

func (p streamPersister) OpenBlob(name string) (io.ReadCloser, int64, error) {
	b, ok := p.memPersister[name]
	if !ok {
		return nil, 0, nil
	}
	return io.NopCloser(iotest.OneByteReader(bytes.NewReader(b))), int64(len(b)), nil
}

// TestTieredStreamed: a Tiered index saved through a BlobStreamer writes
// the same bytes as through PutBlob, loads back through one-byte reads with
// the same answers, and a damaged stream is ErrCorrupt.
func TestTieredStreamed(t *testing.T) {
	const seed = 21
	t.Logf("seed %d", seed)
	ts := newTestSet(seed, 300, 8, 4, 10)
	opts := TieredOptions{GraphAt: 100, HNSW: HNSWOptions{M: 6}}
	idx, _ := NewTiered(8, Cosine, opts)
	addBoth(idx, NewFlat(8, Cosine), ts)
	idx.Wait()
	for _, id := range ts.ids[:150] { // some buffered, most in the graph
		idx.Add(id, ts.vecs[id])
	}
	idx.Stop()
	whole, streamed := memPersister{}, streamPersister{memPersister{}}
	if err := idx.Save(whole); err != nil {
		t.Fatal(err)
	}
	if err := idx.Save(streamed); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(whole, streamed.memPersister) {
		t.Fatal("streamed blobs differ from whole ones")
	}
	got, err := LoadTiered(streamed, opts)
	if err != nil {
		t.Fatal(err)
	}
	got.Stop()
	if !got.IDs().Equals(idx.IDs()) || !got.HasGraph() {
		t.Fatalf("loaded %d IDs (graph %t), saved %d", got.Len(), got.HasGraph(), idx.Len())
	}
	// The same answers, up to rounding: the loaded index's builder may
	// move a buffered vector into the graph before Stop, and the flat scan
	// (a panel kernel) and the graph (a dot product) sum in different
	// orders, so a score may differ in its last bit and near-ties swap.
	for _, q := range ts.qs {
		a, _ := idx.Search(q, 10, nil, Params{})
		b, _ := got.Search(q, 10, nil, Params{})
		if len(a) != len(b) {
			t.Fatalf("loaded index answers %v, saved one %v", b, a)
		}
		for i := range a {
			near := math.Abs(float64(a[i].Score-b[i].Score)) <= 1e-6*max(1, math.Abs(float64(a[i].Score)))
			if !near || (a[i].ID != b[i].ID && !nearTie(a, b, i)) {
				t.Fatalf("loaded index answers %v, saved one %v", b, a)
			}
		}
	}
	for _, name := range []string{hnswBlobName, flatBlobName} {
		blob := streamed.memPersister[name]
		for _, at := range []int{0, len(blob) / 2, len(blob) - 1} {
			bad := streamPersister{memPersister{}}
			for k, v := range streamed.memPersister {
				bad.memPersister[k] = bytes.Clone(v)
			}
			bad.memPersister[name][at] ^= 0x20
			if _, err := LoadTiered(bad, opts); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: byte %d flipped: %v, want ErrCorrupt", name, at, err)
			}
			bad.memPersister[name] = blob[:at]
			if _, err := LoadTiered(bad, opts); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: truncated to %d bytes: %v, want ErrCorrupt", name, at, err)
			}
		}
	}
	if s, err := LoadTiered(streamPersister{memPersister{}}, opts); s != nil || err != nil {
		t.Fatalf("nothing saved: %v, %v", s, err)
	}
}

// nearTie reports whether the results at i differ only by the order of
// scores within rounding of each other.
func nearTie(a, b []Result, i int) bool {
	for j := range a {
		if a[j].ID == b[i].ID {
			return math.Abs(float64(a[j].Score-b[i].Score)) <= 1e-6*max(1, math.Abs(float64(b[i].Score)))
		}
	}
	return false
}
