package index

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

// memPersister keeps blobs in a map.
type memPersister map[string][]byte

func (m memPersister) PutBlob(name string, b []byte) error {
	m[name] = append([]byte(nil), b...)
	return nil
}
func (m memPersister) GetBlob(name string) ([]byte, error) { return m[name], nil }

// bruteForce ranks vectors in float64 by the metric, ties by ID.
func bruteForce(m Metric, vecs map[uint32][]float32, q []float32, k int, filter *roaring.Bitmap) []uint32 {
	type sc struct {
		id uint32
		s  float64
	}
	var all []sc
	for id, v := range vecs {
		if filter != nil && !filter.Contains(id) {
			continue
		}
		var d, qn, vn, l2 float64
		for i := range v {
			d += float64(q[i]) * float64(v[i])
			qn += float64(q[i]) * float64(q[i])
			vn += float64(v[i]) * float64(v[i])
			l2 += (float64(q[i]) - float64(v[i])) * (float64(q[i]) - float64(v[i]))
		}
		s := d
		switch m {
		case Cosine:
			s = d / math.Sqrt(qn*vn)
		case L2:
			s = -l2
		}
		all = append(all, sc{id, s})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].s != all[j].s {
			return all[i].s > all[j].s
		}
		return all[i].id < all[j].id
	})
	var out []uint32
	for i := 0; i < k && i < len(all); i++ {
		out = append(out, all[i].id)
	}
	return out
}

func randomVecs(rng *rand.Rand, n, dim int) map[uint32][]float32 {
	vecs := map[uint32][]float32{}
	for len(vecs) < n {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		vecs[uint32(rng.IntN(10*n))] = v
	}
	return vecs
}

func TestFlatMatchesBruteForce(t *testing.T) {
	const seed = 11
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		vecs := randomVecs(rng, 300, 12)
		f := NewFlat(12, m)
		for id, v := range vecs {
			if err := f.Add(id, v); err != nil {
				t.Fatal(err)
			}
		}
		// Delete a third, replace a few.
		n := 0
		for id := range vecs {
			if n%3 == 0 {
				f.Delete(id)
				delete(vecs, id)
			} else if n%7 == 0 {
				v := make([]float32, 12)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				f.Add(id, v)
				vecs[id] = v
			}
			n++
		}
		if f.Len() != len(vecs) {
			t.Fatalf("%s: len %d want %d", m, f.Len(), len(vecs))
		}
		p := memPersister{}
		if err := f.Save(p); err != nil {
			t.Fatal(err)
		}
		loaded, err := LoadFlat(p)
		if err != nil || loaded.Len() != f.Len() {
			t.Fatalf("%s: load: %v", m, err)
		}
		filter := roaring.New()
		for id := range vecs {
			if rng.IntN(10) == 0 {
				filter.Add(id)
			}
		}
		filter.Add(999999) // not indexed: ignored
		for trial := 0; trial < 20; trial++ {
			q := make([]float32, 12)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			for _, fl := range []*roaring.Bitmap{nil, filter} {
				for _, idx := range []*Flat{f, loaded} {
					res, err := idx.Search(q, 10, fl, Params{})
					if err != nil {
						t.Fatal(err)
					}
					want := bruteForce(m, vecs, q, 10, fl)
					if len(res) != len(want) {
						t.Fatalf("%s: %d results, want %d", m, len(res), len(want))
					}
					for i := range res {
						if res[i].ID != want[i] {
							t.Errorf("seed %d %s trial %d: rank %d got %d want %d", seed, m, trial, i, res[i].ID, want[i])
							break
						}
					}
				}
			}
		}
	}
	if _, err := NewFlat(3, L2).Search([]float32{1}, 1, nil, Params{}); err == nil {
		t.Error("wrong query dimension accepted")
	}
	if err := NewFlat(3, L2).Add(1, []float32{1}); err == nil {
		t.Error("wrong vector dimension accepted")
	}
}
