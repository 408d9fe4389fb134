package storage

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestPointPostings: point postings written with items, by a PointWriter
// and deleted with items read back as a model says, across values shared
// by several items (shift 2: four items a value), repeats within a batch
// and two generations; DropPointGens leaves one; a damaged value is
// ErrCorrupt.
func TestPointPostings(t *testing.T) {
	const seed = 12
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	_, c := openSmallPages(t, vfs.NewMem(), 0)
	const shift = 2
	// model[gen][list][iid] = value
	model := map[uint32]map[uint32]map[uint32]string{}
	post := func(gen, iid uint32) PointPostings {
		p := PointPostings{Gen: gen, Shift: shift}
		for l := uint32(0); l < 6; l++ {
			if rng.IntN(2) == 0 {
				p.Lists = append(p.Lists, l)
				p.Values = append(p.Values, []byte(fmt.Sprintf("g%d-i%d-l%d-%d", gen, iid, l, rng.IntN(1000))))
				p.Points++
			}
		}
		if len(p.Lists) == 0 {
			p.Lists, p.Values, p.Points = []uint32{3}, [][]byte{[]byte("only")}, 1
		}
		return p
	}
	set := func(iid uint32, p *PointPostings) {
		for _, lists := range model {
			for _, m := range lists {
				delete(m, iid)
			}
		}
		if p == nil {
			return
		}
		if model[p.Gen] == nil {
			model[p.Gen] = map[uint32]map[uint32]string{}
		}
		for i, l := range p.Lists {
			if model[p.Gen][l] == nil {
				model[p.Gen][l] = map[uint32]string{}
			}
			model[p.Gen][l][iid] = string(p.Values[i])
		}
	}
	check := func(when string) {
		t.Helper()
		for gen, lists := range model {
			r, err := c.NewPointReader(gen, shift)
			if err != nil {
				t.Fatal(err)
			}
			for l := uint32(0); l < 6; l++ {
				got := map[uint32]string{}
				var order []uint32
				if err := r.List(l, func(iid uint32, v []byte) { got[iid] = string(v); order = append(order, iid) }); err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, lists[l]) && !(len(got) == 0 && len(lists[l]) == 0) {
					t.Fatalf("%s: gen %d list %d: %v, want %v", when, gen, l, got, lists[l])
				}
				if !slices.IsSorted(order) {
					t.Fatalf("%s: list %d not ascending: %v", when, l, order)
				}
			}
			r.Close()
		}
	}
	// Items written with postings of generation 1, one ID twice.
	var items []ItemWrite
	ps := map[string]PointPostings{}
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("x%d", i%9)
		p := post(1, uint32(i%9))
		ps[id] = p
		items = append(items, ItemWrite{ID: id, Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}, Points: &p})
	}
	iids, err := c.Write(items)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if iids[i] != uint32(i%9) {
			t.Fatalf("item %d: iid %d", i, iids[i])
		}
		set(iids[i], it.Points)
	}
	check("written")
	// A PointWriter writes generation 2 for every item, one twice.
	w := c.NewPointWriter()
	for iid := uint32(0); iid < 9; iid++ {
		p := post(2, iid)
		if err := w.Put(iid, p); err != nil {
			t.Fatal(err)
		}
		for l := range model[2] {
			delete(model[2][l], iid)
		}
		q := p
		set2 := func(p PointPostings) {
			if model[2] == nil {
				model[2] = map[uint32]map[uint32]string{}
			}
			for i, l := range p.Lists {
				if model[2][l] == nil {
					model[2][l] = map[uint32]string{}
				}
				model[2][l][iid] = string(p.Values[i])
			}
		}
		set2(q)
		if iid == 4 {
			p = post(2, iid)
			if err := w.Put(iid, p); err != nil {
				t.Fatal(err)
			}
			for l := range model[2] {
				delete(model[2][l], iid)
			}
			set2(p)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	check("writer")
	if gens, _ := c.PointGens(); !slices.Equal(gens, []uint32{1, 2}) {
		t.Fatalf("generations %v", gens)
	}
	// An item rewritten without postings, and one deleted, lose theirs in
	// both generations.
	if _, err := c.Write([]ItemWrite{{ID: "x2", Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{0, 1}}}}); err != nil {
		t.Fatal(err)
	}
	set(2, nil)
	if _, err := c.Delete([]string{"x5"}); err != nil {
		t.Fatal(err)
	}
	set(5, nil)
	check("rewritten and deleted")
	n := 0
	if err := c.PointItems(2, func(iid, points uint32) error {
		if iid == 2 || iid == 5 {
			t.Fatalf("item %d still has an entry", iid)
		}
		n++
		return nil
	}); err != nil || n != 7 {
		t.Fatalf("%d entries in generation 2, %v", n, err)
	}
	if err := c.DropPointGens(2); err != nil {
		t.Fatal(err)
	}
	delete(model, 1)
	if gens, _ := c.PointGens(); !slices.Equal(gens, []uint32{2}) {
		t.Fatalf("generations after the drop %v", gens)
	}
	r, _ := c.NewPointReader(1, shift)
	if err := r.List(3, func(iid uint32, _ []byte) { t.Fatalf("dropped generation: item %d", iid) }); err != nil {
		t.Fatal(err)
	}
	r.Close()
	check("dropped")

	// Damaged values: an entry past its block, a length past the value.
	for _, bad := range [][]byte{{9, 1, 'a'}, {0, 5, 'a'}, {1, 1, 'a', 0, 1, 'b'}} {
		k := pointBlockKey(nil, c.cid, 2, 0, 0)
		if err := c.store.db.Set(k, bad, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		r, _ := c.NewPointReader(2, shift)
		if err := r.List(0, func(uint32, []byte) {}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("value %v: %v, want ErrCorrupt", bad, err)
		}
		r.Close()
	}
	// Bad postings are refused before anything is written.
	bad := PointPostings{Gen: 2, Lists: []uint32{2, 1}, Values: [][]byte{{1}, {2}}}
	if _, err := c.Write([]ItemWrite{{ID: "y", Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}, Points: &bad}}); !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("lists out of order: %v", err)
	}
}
