package wpcdb

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// φ is not stored (see storage's package doc): a first stage's item
// vectors are computed from the stored clouds, in batches on every core,
// when the stage is built or brought up to date, and by Upsert only for a
// stage that is loaded. A φ of 1,024 features per nonlinear term costs more
// bytes than the points of a small cloud, and recomputing it is a batched
// product, cheaper than reading it back.

// vectorBatch is how many clouds go through one FeatureMap.MapBatch when a
// stage is built.
const vectorBatch = 512

// phiNeed says how much of φ a first-stage map reads: the linear blocks
// alone (the centroid) or all of it.
type phiNeed bool

const (
	phiAll    phiNeed = true
	phiLinear phiNeed = false
)

// needOf is what map m reads of φ.
func needOf(m *firststage.Map) phiNeed {
	if m.Representation().Kind == firststage.Centroid {
		return phiLinear
	}
	return phiAll
}

// mapPhi computes φ of clouds (valid, as stored) into phi (len(clouds) ×
// the φ dimension), or just its linear blocks (the rest left zero), and an
// error per cloud in errs.
func (c *Collection) mapPhi(clouds []wpcsim.Cloud, need phiNeed, phi []float32, errs []error) {
	fm, ok := c.features.(*wpcsim.FeatureMap)
	if !ok {
		// MaxSim's encoding: one Map per cloud.
		n := len(phi) / max(len(clouds), 1)
		parallel.For(len(clouds), c.db.opts.Parallelism, func(i int) {
			_, errs[i] = c.features.Map(clouds[i], phi[i*n:i*n:(i+1)*n])
		})
		return
	}
	if need == phiAll {
		fm.MapBatch(clouds, phi, errs, c.db.opts.Parallelism)
		return
	}
	n := fm.Dim()
	blocks := fm.Blocks()
	parallel.For(len(clouds), c.db.opts.Parallelism, func(i int) {
		out := phi[i*n : (i+1)*n]
		clear(out)
		lin, err := fm.MapLinear(clouds[i], nil)
		if errs[i] = err; err != nil {
			return
		}
		for _, b := range blocks {
			if b.Exact() {
				lin = lin[copy(out[b.Offset:b.Offset+b.Len], lin):]
			}
		}
	})
}

// phiDim is the length of the collection's φ.
func (c *Collection) phiDim() int {
	switch f := c.features.(type) {
	case *wpcsim.FeatureMap:
		return f.Dim()
	case *wpcsim.FDE:
		return f.Dim()
	}
	panic(fmt.Sprintf("wpcdb: unknown featurizer %T", c.features))
}

// vectorBatcher gathers stored clouds (copied out of the buffers they were
// read into) and hands them to fn with their φ a batch at a time.
type vectorBatcher struct {
	c               *Collection
	need            phiNeed
	fn              func(iid uint32, self wpcsim.Self, phi []float32) error
	iids            []uint32
	selfs           []wpcsim.Self
	lens            []int
	weights, points []float32
	clouds          []wpcsim.Cloud
	phi             []float32
	errs            []error
	dim             int
}

func (c *Collection) newVectorBatcher(need phiNeed, fn func(iid uint32, self wpcsim.Self, phi []float32) error) *vectorBatcher {
	return &vectorBatcher{c: c, need: need, fn: fn, dim: c.Config().Dim}
}

// add queues a record; its cloud may be reused by the caller afterwards.
func (b *vectorBatcher) add(iid uint32, rec storage.Record) error {
	b.iids = append(b.iids, iid)
	b.selfs = append(b.selfs, rec.Self)
	b.lens = append(b.lens, rec.Cloud.Len())
	b.weights = append(b.weights, rec.Cloud.Weights...)
	b.points = append(b.points, rec.Cloud.Points...)
	if len(b.iids) >= vectorBatch {
		return b.flush()
	}
	return nil
}

// flush maps the queued clouds and calls fn for each.
func (b *vectorBatcher) flush() error {
	n := len(b.iids)
	if n == 0 {
		return nil
	}
	b.clouds = b.clouds[:0]
	w, p := 0, 0
	for _, m := range b.lens {
		b.clouds = append(b.clouds, wpcsim.Cloud{Dim: b.dim, Weights: b.weights[w : w+m], Points: b.points[p : p+m*b.dim]})
		w, p = w+m, p+m*b.dim
	}
	d := b.c.phiDim()
	if cap(b.phi) < n*d {
		b.phi = make([]float32, n*d)
	}
	b.phi = b.phi[:n*d]
	if cap(b.errs) < n {
		b.errs = make([]error, n)
	}
	b.errs = b.errs[:n]
	b.c.mapPhi(b.clouds, b.need, b.phi, b.errs)
	for i, iid := range b.iids {
		if err := b.errs[i]; err != nil {
			return fmt.Errorf("item %d: φ of its stored cloud: %w", iid, err)
		}
		if err := b.fn(iid, b.selfs[i], b.phi[i*d:(i+1)*d]); err != nil {
			return err
		}
	}
	b.iids, b.selfs, b.lens = b.iids[:0], b.selfs[:0], b.lens[:0]
	b.weights, b.points = b.weights[:0], b.points[:0]
	return nil
}

// scanVectors calls fn with every item's g(X,X) and φ (as much of it as
// need says), in internal-ID order, computed from the records.
func (c *Collection) scanVectors(need phiNeed, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error {
	b := c.newVectorBatcher(need, fn)
	if err := c.coll.ScanRecords(b.add); err != nil {
		return err
	}
	return b.flush()
}

// vectorsOf calls fn with the g(X,X) and φ of the items iids, in order.
func (c *Collection) vectorsOf(iids []uint32, need phiNeed, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error {
	b := c.newVectorBatcher(need, fn)
	var buf storage.CloudBuf
	for _, iid := range iids {
		rec, err := c.coll.ReadCloud(iid, &buf)
		if err != nil {
			return err
		}
		if err := b.add(iid, rec); err != nil {
			return err
		}
	}
	return b.flush()
}

// vectors is the collection as firststage.Vectors: φ computed from the
// records.
func (c *Collection) vectors() collVectors { return collVectors{c} }

type collVectors struct{ c *Collection }

func (v collVectors) All(m *firststage.Map, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error {
	return v.c.scanVectors(needOf(m), fn)
}

func (v collVectors) Of(iids []uint32, m *firststage.Map, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error {
	return v.c.vectorsOf(iids, needOf(m), fn)
}

// calibrationItems is the collection as a calibration reads it
// (firststage.Items): its live IDs, and φ of the items firststage.Calibrate
// samples, computed from their clouds.
type calibrationItems struct{ c *Collection }

func (c *Collection) calibrationItems() calibrationItems { return calibrationItems{c} }

func (s calibrationItems) Live() *roaring.Bitmap { return s.c.coll.LiveShared() }

func (s calibrationItems) VectorsOf(iids []uint32, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error {
	return s.c.vectorsOf(iids, phiAll, fn)
}

func (s calibrationItems) ReadCloud(iid uint32, buf *storage.CloudBuf) (storage.Record, error) {
	return s.c.coll.ReadCloud(iid, buf)
}
