package firststage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Kind names a representation: which vector stands for a cloud in the
// first stage.
type Kind string

// The representations.
const (
	// Phi is every block of φ: the exact linear block and the random
	// features of each nonlinear term.
	Phi Kind = "phi"
	// Centroid is the exact linear block alone: the weighted centroid of
	// the normalized points, scaled by sqrt(α_linear). For the linear
	// kernel it is exact (see Map.Exact).
	Centroid Kind = "centroid"
	// PCA is φ projected on the r principal directions of a sample of the
	// collection's own vectors (the uncentered second moment, so inner
	// products are what the projection keeps).
	PCA Kind = "pca"
	// FDE is maxsim's fixed-dimensional encoding (wpcsim.FDE).
	FDE Kind = "fde"
	// Points is maxsim's point-level index (package pointindex), chosen
	// over FDE by calibration; the index beside it still holds the FDE
	// vectors, which serve queries with a negative weight (pointsServe).
	Points Kind = "points"
)

// Representation is a collection's chosen first-stage vector, with what
// its calibration measured. The zero value means Phi, not calibrated.
type Representation struct {
	Kind Kind `json:"kind"`
	// Dim is r for PCA (0 otherwise: the dimension follows from the kind).
	Dim int `json:"dim,omitempty"`
	// Recall is recall@10 at Depth measured by the calibration that chose
	// it, on Queries queries against Sample items (0 when not calibrated).
	Recall  float64 `json:"recall,omitempty"`
	Depth   int     `json:"depth,omitempty"`
	Queries int     `json:"queries,omitempty"`
	Sample  int     `json:"sample,omitempty"`
	// Items is how many items the collection held when it was chosen.
	Items int `json:"items,omitempty"`
	// Proj holds PCA's r rows of length len(φ), row-major.
	Proj []float32 `json:"-"`
}

// String is the representation's short name: "phi", "centroid", "pca-64",
// "fde".
func (r Representation) String() string {
	k := r.Kind
	if k == "" {
		k = Phi
	}
	if k == PCA {
		return fmt.Sprintf("pca-%d", r.Dim)
	}
	return string(k)
}

// Featurizer computes a cloud's φ (wpcsim.FeatureMap or wpcsim.FDE).
type Featurizer interface {
	Map(c wpcsim.Cloud, dst []float32) ([]float32, error)
}

// Map maps clouds to a collection's first-stage vectors: one per item as
// the index holds it, one per query as a search probes the index with.
// They are made from the representation's base vector b(·) (φ, its linear
// block, or its projection) and the exact g(X,X), with a metric per score
// mode:
//
//	inner:  item b(X),             query b(Q),       inner product  ≈ g
//	cosine: item b(X)/sqrt(gXX),   query b(Q),       inner product  ∝ cosine
//	mmd:    item [b(X), e],        query [b(Q), 0],  L2, with e² = max(0, gXX − |b(X)|²):
//	        |q − v|² = |bQ|² − 2<bQ,bX> + max(gXX, |bX|²) ≈ mmd²
//
// The mmd form keeps the exact self term where it matters and gives a graph
// a true metric to link items by (an inner product over [φX, gXX] would
// link items by gXX·gYY). A maxsim collection uses its MUVERA-style
// fixed-dimensional encoding (wpcsim.FDE) in place of φ, inner product.
//
// It is safe for concurrent use.
type Map struct {
	sim     *wpcsim.Similarity
	feat    Featurizer
	fde     *wpcsim.FDE
	rep     Representation
	phiDim  int
	blocks  []wpcsim.FeatureBlock // the φ blocks kept (Phi, Centroid)
	linear  []wpcsim.FeatureBlock // φ's exact blocks (the linear terms'), in order
	mode    wpcsim.ScoreMode
	baseDim int // dimension of b(·)
	dim     int
	metric  index.Metric
}

// NewMap returns the map of a collection whose similarity is sim and whose
// φ is feat, for representation rep. It returns nil, nil when feat is nil
// (no first stage), and an error when rep does not fit feat.
func NewMap(sim *wpcsim.Similarity, feat Featurizer, rep Representation) (*Map, error) {
	if feat == nil {
		return nil, nil
	}
	cfg := sim.Config()
	m := &Map{sim: sim, feat: feat, mode: cfg.Score, metric: index.InnerProduct}
	switch f := feat.(type) {
	case *wpcsim.FDE:
		m.fde = f
		m.phiDim = f.Dim()
		m.blocks = []wpcsim.FeatureBlock{{Offset: 0, Len: f.Dim()}}
		if rep.Kind != "" && rep.Kind != FDE && rep.Kind != Points {
			return nil, fmt.Errorf("firststage: representation %s does not apply to maxsim", rep)
		}
		if rep.Kind == "" {
			rep.Kind = FDE
		}
	case *wpcsim.FeatureMap:
		m.phiDim = f.Dim()
		all := f.Blocks()
		for _, b := range all {
			if b.Kind == wpcsim.Linear {
				m.linear = append(m.linear, b)
			}
		}
		switch rep.Kind {
		case "", Phi:
			rep.Kind = Phi
			m.blocks = all
		case Centroid:
			if len(m.linear) == 0 {
				return nil, fmt.Errorf("firststage: representation centroid needs a linear term in the kernel")
			}
			m.blocks = m.linear // what FeatureMap.MapLinear computes
		case PCA:
			if rep.Dim <= 0 || rep.Dim >= m.phiDim || len(rep.Proj) != rep.Dim*m.phiDim {
				return nil, fmt.Errorf("firststage: pca of %d rows needs a %d×%d projection, got %d values", rep.Dim, rep.Dim, m.phiDim, len(rep.Proj))
			}
		default:
			return nil, fmt.Errorf("firststage: unknown representation %q", rep.Kind)
		}
	default:
		return nil, fmt.Errorf("firststage: unknown featurizer %T", feat)
	}
	m.rep = rep
	if rep.Kind == PCA {
		m.baseDim = rep.Dim
	} else {
		for _, b := range m.blocks {
			m.baseDim += b.Len
		}
	}
	m.dim = m.baseDim
	if m.mode == wpcsim.ScoreMMD {
		m.dim++
		m.metric = index.L2
	}
	return m, nil
}

// Representation returns the map's representation.
func (m *Map) Representation() Representation { return m.rep }

// Dim is the vectors' dimension.
func (m *Map) Dim() int { return m.dim }

// PhiDim is the length of φ, from which every representation is made.
func (m *Map) PhiDim() int { return m.phiDim }

// Metric is how the index compares a query vector with an item vector.
func (m *Map) Metric() index.Metric { return m.metric }

// Exact reports whether the first-stage score is the exact score: the
// linear kernel alone, whose g is the inner product of the weighted
// centroids (PAPER.md), represented by the centroid itself. A search then
// needs no rerank (see Stage.Candidates).
func (m *Map) Exact() bool {
	k := m.sim.Config().Kernel
	if len(k.Terms) != 1 || k.Terms[0].Kind != wpcsim.Linear {
		return false
	}
	return m.rep.Kind == Phi || m.rep.Kind == Centroid
}

// AppendItem appends an item's vector, made from its φ and g(X,X),
// to dst.
func (m *Map) AppendItem(dst []float32, self wpcsim.Self, phi []float32) []float32 {
	start := len(dst)
	dst = m.appendBase(dst, phi)
	base := dst[start:]
	switch m.mode {
	case wpcsim.ScoreCosine:
		scale := cosineScale(self)
		for i := range base {
			base[i] *= scale
		}
	case wpcsim.ScoreMMD:
		var n2 float64
		for _, x := range base {
			n2 += float64(x) * float64(x)
		}
		dst = append(dst, float32(math.Sqrt(max(0, self.G-n2))))
	}
	return dst
}

// cosineScale is what the cosine mode scales an item's vector by:
// 1/sqrt(g(X,X)), or 0 for a cloud without a direction (Self.Zero), whose
// cosine is 0.
func cosineScale(self wpcsim.Self) float32 {
	if self.Zero() {
		return 0
	}
	return float32(1 / math.Sqrt(self.G))
}

// appendBase appends b(·) of a φ.
func (m *Map) appendBase(dst []float32, phi []float32) []float32 {
	if m.rep.Kind == PCA {
		for r := 0; r < m.rep.Dim; r++ {
			dst = append(dst, simd.Dot(m.rep.Proj[r*m.phiDim:(r+1)*m.phiDim], phi))
		}
		return dst
	}
	for _, b := range m.blocks {
		dst = append(dst, phi[b.Offset:b.Offset+b.Len]...)
	}
	return dst
}

// AppendQuery appends the vector a search probes the index with to dst.
// The query must be valid for the collection.
func (m *Map) AppendQuery(dst []float32, q wpcsim.Cloud) ([]float32, error) {
	var err error
	switch {
	case m.fde != nil:
		dst, err = m.fde.MapQuery(q, dst)
	case m.rep.Kind == Centroid:
		// The linear block alone: skip the random features.
		dst, err = m.feat.(*wpcsim.FeatureMap).MapLinear(q, dst)
	case m.Exact() && isFeatureMap(m.feat):
		// φ of the linear kernel is its linear block: MapLinear computes
		// the same values without Map's batching of random features (its
		// bookkeeping was 3% of a BenchmarkSearchSmall/linear query).
		dst, err = m.feat.(*wpcsim.FeatureMap).MapLinear(q, dst)
	default:
		start := len(dst)
		if dst, err = m.feat.Map(q, dst); err != nil {
			return dst[:start], err
		}
		if m.rep.Kind == PCA {
			phi := slices.Clone(dst[start:])
			dst = m.appendBase(dst[:start], phi)
		}
	}
	if err != nil {
		return dst, err
	}
	if m.mode == wpcsim.ScoreMMD {
		dst = append(dst, 0)
	}
	return dst, nil
}

func isFeatureMap(f any) bool {
	_, ok := f.(*wpcsim.FeatureMap)
	return ok
}

// ExactScore turns the index's score of an item into the exact score of the
// mode (valid only when Exact): g for inner, the cosine, the MMD distance.
// qself is the query's exact g(Q,Q).
func (m *Map) ExactScore(s float32, qself wpcsim.Self) float64 {
	switch m.mode {
	case wpcsim.ScoreCosine:
		if qself.Zero() {
			return 0
		}
		return max(-1, min(1, float64(s)/math.Sqrt(qself.G)))
	case wpcsim.ScoreMMD:
		return math.Sqrt(max(0, -float64(s)))
	}
	return float64(s)
}

// The saved representation: 'R', version, then the JSON-free fields
// little-endian, then the projection, then a CRC-32C of all before it.
//
//	+-----+-----+---------+---------+------------+-----------+---------+--------+-------+--------+---------+-------+
//	| 'R' | ver | kind(1) | dim u32 | recall f64 | depth u32 | queries | sample | items | phiDim | proj    | crc32 |
//	|     |  1  |         |         |            |           | u32     | u32    | u32   | u32    | f32×n   |       |
//	+-----+-----+---------+---------+------------+-----------+---------+--------+-------+--------+---------+-------+
//
// kind: 0 phi, 1 centroid, 2 pca, 3 fde, 4 points; proj holds dim×phiDim values for
// pca and nothing otherwise.
const repVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var kindCodes = []Kind{Phi, Centroid, PCA, FDE, Points}

// MarshalRepresentation encodes rep (with the length of φ it projects).
func MarshalRepresentation(rep Representation, phiDim int) []byte {
	code := slices.Index(kindCodes, rep.Kind)
	if code < 0 {
		code = 0
	}
	b := []byte{'R', repVersion, byte(code)}
	b = binary.LittleEndian.AppendUint32(b, uint32(rep.Dim))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(rep.Recall))
	for _, v := range []int{rep.Depth, rep.Queries, rep.Sample, rep.Items, phiDim} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	for _, v := range rep.Proj {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// UnmarshalRepresentation decodes a saved representation; phiDim is the
// length of φ it was saved with.
func UnmarshalRepresentation(b []byte) (rep Representation, phiDim int, err error) {
	const head = 3 + 4 + 8 + 5*4
	if len(b) < head+4 || b[0] != 'R' || b[1] != repVersion || int(b[2]) >= len(kindCodes) {
		return rep, 0, fmt.Errorf("firststage: saved representation: bad header")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return rep, 0, fmt.Errorf("firststage: saved representation: checksum mismatch")
	}
	rep.Kind = kindCodes[b[2]]
	rep.Dim = int(binary.LittleEndian.Uint32(b[3:]))
	rep.Recall = math.Float64frombits(binary.LittleEndian.Uint64(b[7:]))
	rep.Depth = int(binary.LittleEndian.Uint32(b[15:]))
	rep.Queries = int(binary.LittleEndian.Uint32(b[19:]))
	rep.Sample = int(binary.LittleEndian.Uint32(b[23:]))
	rep.Items = int(binary.LittleEndian.Uint32(b[27:]))
	phiDim = int(binary.LittleEndian.Uint32(b[31:]))
	proj := body[head:]
	if len(proj)%4 != 0 || (rep.Kind == PCA && len(proj)/4 != rep.Dim*phiDim) || (rep.Kind != PCA && len(proj) != 0) {
		return Representation{}, 0, fmt.Errorf("firststage: saved representation: %d projection bytes for %s over φ of %d", len(proj), rep, phiDim)
	}
	if n := len(proj) / 4; n > 0 {
		rep.Proj = make([]float32, n)
		for i := range rep.Proj {
			rep.Proj[i] = math.Float32frombits(binary.LittleEndian.Uint32(proj[4*i:]))
		}
	}
	return rep, phiDim, nil
}
