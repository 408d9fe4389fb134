package wpcdb

import (
	"errors"
	"fmt"

	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/pointindex"
	"github.com/wpcdb/wpcdb/query"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// fdeDepth is the first-stage depth of a maxsim search through its FDE:
// the encoding ranks less sharply than φ (the exact top 10 was in its top
// 400 but not always its top 100, see wpcsim.FDEOptions).
func fdeDepth(k int) int { return max(40*k, 400) }

// pointDepth is the first-stage depth of a maxsim search through the
// point index of a collection of count items. Its estimate ranks close to
// the exact score, but the rank it gives an item of the exact top 10 grows
// with the collection, as the items that outscore it in the estimate do:
// on bench's colbert shape its top 20 held 99% of the exact top 10 at
// 2,000 documents; its top 50 held 0.994 at 20,000 and 0.960 at 50,000,
// where its top 100 held 0.997. So the depth is a thousandth of the
// collection, at least 50.
func pointDepth(k, count int) int { return max(5*k, 50, count/1000) }

// maxSimDepth is a maxsim collection's first-stage depth for the top k of
// q: pointDepth when the point index serves q, else the FDE's (a query
// with a negative weight goes to the FDE beside a point index, and at the
// point index's depth of 50 its candidates held too little of the exact
// top 10).
func (c *Collection) maxSimDepth(q wpcsim.Cloud, k int) int {
	if st := c.first.stage(); st != nil && st.PointsServe(q) {
		return pointDepth(k, c.coll.Count())
	}
	return fdeDepth(k)
}

// calibrationDepth is the depth a calibration measures the first stage's
// vectors at: for maxsim the FDE's, whatever the current stage.
func (c *Collection) calibrationDepth() int {
	if c.Config().Similarity.Kernel.IsMaxSim() {
		return fdeDepth(10)
	}
	return query.DefaultCandidates(10)
}

// calibrationPointDepth is the point index's depth a calibration measures
// it at (maxsim collections; else the FDE's depth, which bounds nothing):
// that of a collection of the sample's size (at most 50,000 items, so 50),
// as the FDE's is.
func (c *Collection) calibrationPointDepth() int {
	if c.Config().Similarity.Kernel.IsMaxSim() {
		return pointDepth(10, 0)
	}
	return c.calibrationDepth()
}

// attachPoints gives a stage whose representation is firststage.Points
// its point index: a loaded one (its centroids, from the saved first
// stage) is synced with the live items (pointindex.Index.Sync: items
// written while no index was loaded get their postings), otherwise one is
// built from every live item's stored cloud under a new generation of
// postings. Either way the postings of other generations (an index
// replaced, or a build cut short) are deleted. The caller holds indexMu
// exclusively, so no write is missed. When the collection has become too
// small to train on, the stage keeps its FDE alone.
func (c *Collection) attachPoints(st *firststage.Stage) error {
	if st.Map.Representation().Kind != firststage.Points {
		return c.dropPointGens(noPointGen) // e.g. a switch back to the FDE
	}
	read := func(iid uint32) (wpcsim.Cloud, bool, error) {
		rec, err := c.coll.ReadCloud(iid, nil)
		if errors.Is(err, storage.ErrNotFound) {
			return wpcsim.Cloud{}, false, nil
		}
		return rec.Cloud, err == nil, err
	}
	if st.Points != nil {
		c.setPointBudget(st.Points)
		if err := st.Points.Sync(c.coll.Live(), read); err != nil {
			return err
		}
		return c.dropPointGens(st.Points.Gen())
	}
	live := c.coll.Live()
	src := func(fn func(uint32, wpcsim.Cloud) error) error {
		var buf storage.CloudBuf
		it := live.Iterator()
		for it.HasNext() {
			iid := it.Next()
			rec, err := c.coll.ReadCloud(iid, &buf)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := fn(iid, rec.Cloud); err != nil {
				return err
			}
		}
		return nil
	}
	gens, err := c.coll.PointGens()
	if err != nil {
		return err
	}
	gen := uint32(0)
	if len(gens) > 0 {
		gen = gens[len(gens)-1] + 1
	}
	cfg := c.Config()
	x, err := firststage.BuildPoints(cfg.Dim, src, cfg.Features.Seed, c.db.opts.Parallelism, firststage.PointStore(c.coll), gen)
	if err != nil {
		c.db.opts.Logger.Warn("point index not built; the FDE serves the first stage", "collection", c.Name(), "err", err)
		return c.dropPointGens(gen)
	}
	c.setPointBudget(x)
	st.Points = x
	return c.dropPointGens(gen)
}

// setPointBudget gives a point index the database's budget of resident
// posting lists (Options.PointCacheBytes).
func (c *Collection) setPointBudget(x *pointindex.Index) {
	switch b := c.db.opts.PointCacheBytes; {
	case b < 0:
		x.SetResidentBytes(0)
	case b > 0:
		x.SetResidentBytes(b)
	default:
		x.SetResidentBytes(pointindex.DefaultResidentBytes)
	}
}

// dropPointGens deletes the postings of every generation but keep, once
// no search reads a stage that may hold another (firstStage.gens: a search
// that took a stage just replaced finishes first).
func (c *Collection) dropPointGens(keep uint32) error {
	c.first.gens.Lock()
	defer c.first.gens.Unlock()
	return c.coll.DropPointGens(keep)
}

// noPointGen is a generation no index has: dropPointGens(noPointGen)
// deletes every point posting.
const noPointGen = ^uint32(0)

// pointBytes is the resident memory of a stage's point index (0 without).
func pointBytes(st *firststage.Stage) int64 {
	if st.Points == nil {
		return 0
	}
	return st.Points.Stats().ResidentBytes
}

// pointStatus describes a stage's point index (nil without).
func pointStatus(st *firststage.Stage) *PointIndexStatus {
	if st.Points == nil {
		return nil
	}
	return pointStatusOf(st.Points.Stats())
}

// savedPointStatus describes the saved point index of a stage not loaded
// (nil without one, or when it cannot be read), its counts read from the
// postings' item entries.
func (c *Collection) savedPointStatus(saved *storage.SavedIndex) *PointIndexStatus {
	x, err := firststage.SavedPoints(saved, c.coll)
	if err != nil || x == nil {
		return nil
	}
	s, err := x.StoredStats()
	if err != nil {
		return nil
	}
	return pointStatusOf(s)
}

func pointStatusOf(s pointindex.Stats) *PointIndexStatus {
	ps := &PointIndexStatus{Centroids: s.Centroids, Bits: s.Bits, Items: s.Items, Points: s.Points,
		DiskBytes: s.DiskBytes, ResidentBytes: s.ResidentBytes, Drift: s.Drift}
	if s.Points > 0 {
		ps.DiskBytesPerPoint = float64(s.DiskBytes) / float64(s.Points)
		ps.ResidentBytesPerPoint = float64(s.ResidentBytes) / float64(s.Points)
	}
	return ps
}

// encodePoints sets the point postings of the prepared writes (those whose
// errs are nil) for stage st's point index, so that storage writes them in
// the items' batch.
func encodePoints(st *firststage.Stage, writes []storage.ItemWrite, errs []error, parallelism int) []pointindex.Postings {
	if st == nil || st.Points == nil {
		return nil
	}
	ps := make([]pointindex.Postings, len(writes))
	parallel.For(len(writes), parallelism, func(i int) {
		if errs[i] != nil {
			return
		}
		p, err := st.Points.Encode(writes[i].Cloud)
		if err != nil {
			errs[i] = err
			return
		}
		ps[i] = p
		writes[i].Points = firststage.ToStorage(st.Points.Gen(), p)
	})
	return ps
}

// UseFirstStage switches a maxsim collection's first stage to kind, "fde"
// or "points", rebuilding it, until its next calibration chooses again:
// benchmarks measure both on the same data. It is an error for other
// kernels (Calibrate chooses their representation) and for "points" over
// raw points.
func (c *Collection) UseFirstStage(kind string) error {
	if c.first == nil || !c.Config().Similarity.Kernel.IsMaxSim() {
		return fmt.Errorf("%w: first stage %q: only a maxsim collection chooses its first stage by name", ErrInvalidArgument, kind)
	}
	k := firststage.Kind(kind)
	if k != firststage.FDE && (k != firststage.Points || !firststage.PointsApply(c.sim, c.Config().MaxPoints)) {
		return fmt.Errorf("%w: first stage %q: want fde or points (points needs normalized points and at most 65,536 points per cloud)", ErrInvalidArgument, kind)
	}
	return c.useRepresentation(firststage.Representation{Kind: k, Items: c.coll.Count()})
}

// sameFDE reports whether two representations are maxsim's FDE and points,
// whose stages index the same FDE vectors.
func sameFDE(a, b firststage.Representation) bool {
	fde := func(r firststage.Representation) bool { return r.Kind == firststage.FDE || r.Kind == firststage.Points }
	return fde(a) && fde(b)
}
