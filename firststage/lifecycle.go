package firststage

import (
	"fmt"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/pointindex"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// The lifecycle of a collection's first stage over its storage: options,
// build from the items' vectors, load of the saved index with the change-log
// replay, and save. The root package decides when (on first use, on
// recalibration, on close) and holds the collection's locks.

// tieredOptions is the options of the index holding m's vectors for
// coll (collconfig.Index.Tiered).
//
// A first stage that only prunes keeps its graph's int8 codes without the
// vectors (index.TieredOptions.CodesOnly): the rerank scores its
// candidates exactly. An exact one (Map.Exact, the linear kernel) keeps
// them: its scores are the results'.
func tieredOptions(coll *storage.Coll, m *Map) index.TieredOptions {
	return tieredOptionsFor(coll.Config().Index, m)
}

// tieredOptionsFor is tieredOptions for index configuration ic.
func tieredOptionsFor(ic collconfig.Index, m *Map) index.TieredOptions {
	o := ic.Tiered(m.Dim(), m.Exact())
	o.CodesOnly = !m.Exact()
	return o
}

// ResidentBytes is the memory of a stage over map m holding inGraph
// vectors in its graph and buffered in its buffer (index.ResidentBytes).
func ResidentBytes(coll *storage.Coll, m *Map, inGraph, buffered int) int64 {
	return index.ResidentBytes(m.Dim(), inGraph, buffered, tieredOptions(coll, m))
}

// Vectors computes items' g(X,X) and φ for a map. φ is not stored (see
// storage's package doc): the collection computes it from the stored
// clouds, in batches, as much of it as the map reads.
type Vectors interface {
	// All calls fn with every live item's vectors, in internal-ID order.
	All(m *Map, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error
	// Of calls fn with the vectors of the items iids, in order.
	Of(iids []uint32, m *Map, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error
}

// Build builds a stage for map m from every item's vectors.
func Build(coll *storage.Coll, vecs Vectors, m *Map) (*Stage, error) {
	idx, err := index.NewTiered(m.Dim(), m.Metric(), tieredOptions(coll, m))
	if err != nil {
		return nil, err
	}
	var v []float32
	err = vecs.All(m, func(iid uint32, self wpcsim.Self, phi []float32) error {
		v = m.AppendItem(v[:0], self, phi)
		return idx.Add(iid, v)
	})
	if err != nil {
		idx.Stop()
		return nil, err
	}
	return &Stage{Map: m, Index: idx}, nil
}

// repBlobName is the saved index's blob holding the stage's representation
// (MarshalRepresentation): saved and loaded with the index it built, so
// the two always agree.
const repBlobName = "representation"

// SavedRepresentation reads a saved index's representation and the length
// of φ it was saved with; ok is false for an index saved before
// representations were (its vectors are φ).
func SavedRepresentation(saved *storage.SavedIndex) (rep Representation, phiDim int, ok bool, err error) {
	b, err := saved.GetBlob(repBlobName)
	if err != nil || b == nil {
		return rep, 0, false, err
	}
	rep, phiDim, err = UnmarshalRepresentation(b)
	return rep, phiDim, err == nil, err
}

// SavedMap returns the map of a saved index for a collection whose
// similarity is sim and φ feat: its saved representation, or φ for an
// index saved before representations were.
func SavedMap(saved *storage.SavedIndex, sim *wpcsim.Similarity, feat Featurizer) (*Map, error) {
	rep, phiDim, ok, err := SavedRepresentation(saved)
	if err != nil {
		return nil, err
	}
	m, err := NewMap(sim, feat, rep)
	if err == nil && ok && m.PhiDim() != phiDim {
		err = fmt.Errorf("firststage: saved representation is over φ of %d, the collection's has %d", phiDim, m.PhiDim())
	}
	return m, err
}

// LoadSaved reads coll's saved index, page by page, and replays the change
// log after it: (nil, false, nil) when none was saved. current reports that
// the stage equals the saved index (nothing replayed, the collection's
// epoch the saved one). The caller holds off writes meanwhile, so that
// each is either in the change log read here or sees the loaded stage.
func LoadSaved(coll *storage.Coll, vecs Vectors, sim *wpcsim.Similarity, feat Featurizer) (st *Stage, current bool, err error) {
	saved, err := coll.OpenSavedIndex()
	if err != nil || saved == nil {
		return nil, false, err
	}
	defer saved.Close()
	m, err := SavedMap(saved, sim, feat)
	if err != nil {
		return nil, false, err
	}
	idx, err := index.LoadTiered(saved, tieredOptions(coll, m))
	if err != nil {
		return nil, false, err
	}
	if idx == nil {
		return nil, false, fmt.Errorf("%w: saved index without its tiered header", index.ErrCorrupt)
	}
	if idx.Dim() != m.Dim() || idx.Metric() != m.Metric() {
		idx.Stop()
		return nil, false, fmt.Errorf("saved index has dimension %d and metric %s, its map %d and %s", idx.Dim(), idx.Metric(), m.Dim(), m.Metric())
	}
	st = &Stage{Map: m, Index: idx}
	if err := loadSavedPoints(saved, st, coll); err != nil {
		idx.Stop()
		return nil, false, err
	}
	replayed := 0
	var written []uint32
	err = coll.ChangesSince(saved.Epoch, func(iid uint32) error {
		replayed++
		if !coll.IsLive(iid) {
			idx.Delete(iid)
			return nil
		}
		written = append(written, iid)
		return nil
	})
	if err == nil {
		var v []float32
		err = vecs.Of(written, m, func(iid uint32, self wpcsim.Self, phi []float32) error {
			v = m.AppendItem(v[:0], self, phi)
			return idx.Add(iid, v)
		})
	}
	if err != nil {
		idx.Stop()
		return nil, false, err
	}
	return st, replayed == 0 && coll.Epoch() == saved.Epoch, nil
}

// Save persists st as coll's saved index, with the write epoch it
// reflects, so that the next load replays only later writes. The caller
// holds off writes meanwhile.
func Save(coll *storage.Coll, st *Stage, epoch uint64) error {
	save, err := coll.BeginIndexSave()
	if err != nil {
		return err
	}
	err = st.Index.Save(save)
	if err == nil {
		err = save.PutBlob(repBlobName, MarshalRepresentation(st.Map.Representation(), st.Map.PhiDim()))
	}
	if err == nil {
		err = savePoints(save, st)
	}
	if err != nil {
		save.Abort()
		return err
	}
	return save.Commit(epoch)
}

// pointsBlobName is the saved index's blob holding the point index
// (pointindex.Index.WriteTo), saved with the vector index and the
// representation in one crash-safe save, so the three always agree.
const pointsBlobName = "points"

// savePoints adds the stage's point index to a save (nothing without one).
func savePoints(save *storage.IndexSave, st *Stage) error {
	if st.Points == nil {
		return nil
	}
	w, err := save.CreateBlob(pointsBlobName)
	if err != nil {
		return err
	}
	if _, err := st.Points.WriteTo(w); err != nil {
		return err
	}
	return w.Close()
}

// loadSavedPoints reads the saved point index of a stage whose
// representation is points (its centroids and buckets; the postings are
// in Pebble, and the caller syncs them with the live items: see
// pointindex.Index.Sync); without one (saved before it existed), the
// caller builds it after the load. A damaged one is an error: the caller
// rebuilds the whole stage from the items.
func loadSavedPoints(saved *storage.SavedIndex, st *Stage, coll *storage.Coll) error {
	dim := coll.Config().Dim
	if st.Map.Representation().Kind != Points {
		return nil
	}
	r, size, err := saved.OpenBlob(pointsBlobName)
	if err != nil || r == nil {
		return err
	}
	defer r.Close()
	x, err := pointindex.Read(r, size, PointStore(coll))
	if err != nil {
		return err
	}
	if x.Dim() != dim {
		return fmt.Errorf("%w: saved point index of dimension %d, collection %d", pointindex.ErrCorrupt, x.Dim(), dim)
	}
	st.Points = x
	return nil
}

// SavedPoints reads a saved index's point index (nil when it has none),
// unsynced: its counts are zero (pointindex.Index.StoredStats reads them
// from the store). For describing a collection whose stage is not loaded.
func SavedPoints(saved *storage.SavedIndex, coll *storage.Coll) (*pointindex.Index, error) {
	r, size, err := saved.OpenBlob(pointsBlobName)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.Close()
	return pointindex.Read(r, size, PointStore(coll))
}
