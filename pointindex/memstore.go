package pointindex

import (
	"maps"
	"slices"
	"sync"
)

// memStore keeps posting lists in memory: for tests and for an index
// without a collection.
type memStore struct {
	mu    sync.RWMutex
	lists map[[2]uint32]map[uint32][]byte // (gen, list) → iid → value
	items map[[2]uint32]Postings          // (gen, iid) → postings
}

// NewMemStore returns an empty in-memory Store.
func NewMemStore() Store {
	return &memStore{lists: map[[2]uint32]map[uint32][]byte{}, items: map[[2]uint32]Postings{}}
}

func (m *memStore) Put(gen, iid uint32, p Postings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteLocked(gen, iid)
	for i, l := range p.Lists {
		lst := m.lists[[2]uint32{gen, l}]
		if lst == nil {
			lst = map[uint32][]byte{}
			m.lists[[2]uint32{gen, l}] = lst
		}
		lst[iid] = slices.Clone(p.Values[i])
	}
	m.items[[2]uint32{gen, iid}] = Postings{Points: p.Points, Lists: slices.Clone(p.Lists)}
	return nil
}

func (m *memStore) deleteLocked(gen, iid uint32) {
	old, ok := m.items[[2]uint32{gen, iid}]
	if !ok {
		return
	}
	for _, l := range old.Lists {
		delete(m.lists[[2]uint32{gen, l}], iid)
	}
	delete(m.items, [2]uint32{gen, iid})
}

func (m *memStore) Delete(gen, iid uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteLocked(gen, iid)
	return nil
}

func (m *memStore) Flush() error { return nil }

func (m *memStore) Items(gen uint32, fn func(iid, points uint32) error) error {
	m.mu.RLock()
	var ids []uint32
	pts := map[uint32]uint32{}
	for k, p := range m.items {
		if k[0] == gen {
			ids = append(ids, k[1])
			pts[k[1]] = uint32(p.Points)
		}
	}
	m.mu.RUnlock()
	slices.Sort(ids)
	for _, iid := range ids {
		if err := fn(iid, pts[iid]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) DiskBytes(gen uint32) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var n int64
	for k, lst := range m.lists {
		if k[0] == gen {
			for _, v := range lst {
				n += int64(len(v)) + 8
			}
		}
	}
	return n, nil
}

func (m *memStore) NewReader(gen uint32, _ uint8) (Reader, error) { return memReader{m, gen}, nil }

type memReader struct {
	m   *memStore
	gen uint32
}

func (r memReader) List(l uint32, fn func(iid uint32, v []byte)) error {
	r.m.mu.RLock()
	lst := r.m.lists[[2]uint32{r.gen, l}]
	ids := slices.Sorted(maps.Keys(lst))
	vals := make([][]byte, len(ids))
	for i, iid := range ids {
		vals[i] = lst[iid]
	}
	r.m.mu.RUnlock()
	for i, iid := range ids {
		fn(iid, vals[i])
	}
	return nil
}

func (r memReader) Close() error { return nil }
