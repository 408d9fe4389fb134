package wpcsim

import (
	"math"
	"strconv"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// Cloud is a weighted point cloud {(w_i, x_i)}: Len() points of dimension
// Dim, stored flat and row-major (point i is Points[i*Dim:(i+1)*Dim]), each
// with a signed float32 weight. A Cloud is a plain value; the scorers only
// read it, so one Cloud may be shared by concurrent readers.
type Cloud struct {
	Dim     int
	Weights []float32
	Points  []float32
}

// Len returns the number of points (the number of weights).
func (c Cloud) Len() int { return len(c.Weights) }

// Point returns point i as a slice of Points.
func (c Cloud) Point(i int) []float32 { return c.Points[i*c.Dim : (i+1)*c.Dim] }

// Limits bound what Validate accepts.
type Limits struct {
	// Dim is the required dimension; 0 accepts any positive dimension.
	Dim int
	// MaxPoints is the largest number of points; 0 means no limit.
	MaxPoints int
	// RawPoints is true when points are used as given (Config.RawPoints).
	// Otherwise points are L2-normalized and a zero point is refused.
	RawPoints bool
}

// maxRawNorm2 bounds the squared norm of a raw point so that squared norms,
// inner products and ||a||² + ||b||² - 2<a,b> all stay finite in float32.
const maxRawNorm2 = math.MaxFloat32 / 4

// Validate checks c against PAPER.md's rules and lim. Each error is a
// *FieldError naming the field and index: no points, weights/points length
// mismatch, dimension, too many points, a NaN or ±Inf weight or coordinate,
// a zero point while normalization is on, or (for raw points) a point so
// long that its squared norm overflows float32.
func (c Cloud) Validate(lim Limits) error {
	_, err := c.validate(lim, nil, keepNone)
	return err
}

// normKeep says which squared point norms validate appends.
type normKeep uint8

const (
	keepNone normKeep = iota
	// keep32: pointNorm2's (a float32 SIMD dot), for normalized points and
	// raw points under a float32 Gram.
	keep32
	// keep64: summed in float64 (simd.Norms64), for a wide Gram, where
	// ||a||² + ||b||² − 2⟨a,b⟩ cancels (TestWideFarFromOrigin).
	keep64
)

// validate is Validate that also appends each point's squared norm to
// norms as keep says, so a scorer need not read the points twice.
func (c Cloud) validate(lim Limits, norms []float64, keep normKeep) ([]float64, error) {
	if err := c.validateShape(lim); err != nil {
		return norms, err
	}
	m := len(c.Weights)
	if keep == keep64 {
		// One SIMD call for the cloud. A float64 sum of squared float32
		// values cannot overflow, and is NaN or +Inf exactly when a
		// coordinate is: a finite norm in range proves its point valid.
		// Replaced a float32 dot per point and a scalar float64 norm per
		// point after it (18% of BenchmarkSearchPatches' CPU).
		base := len(norms)
		norms = append(norms, make([]float64, m)...)
		simd.Norms64(norms[base:], c.Points, m, c.Dim)
		for i, n2 := range norms[base:] {
			if n2 < 1e30 && (lim.RawPoints || n2 > 1e-30) {
				continue
			}
			var err error
			if norms[base+i], err = checkPoint(lim, i, c.Point(i)); err != nil {
				return norms[:base], err
			}
		}
		return norms, nil
	}
	for i := 0; i < m; i++ {
		p := c.Points[i*c.Dim : (i+1)*c.Dim]
		// Fast path: a finite, comfortably sized float32 squared norm
		// (SIMD) proves every coordinate finite and the point non-zero.
		n2 := float64(simd.Dot(p, p))
		if !(n2 > 1e-30 && n2 < 1e30) {
			var err error
			if n2, err = checkPoint(lim, i, p); err != nil {
				return norms, err
			}
		}
		if keep != keepNone {
			norms = append(norms, n2)
		}
	}
	return norms, nil
}

// checkPoint is validate's slow path for point i (p): it names a
// non-finite coordinate, a zero point under normalization or a raw point
// too long, and otherwise returns the squared norm summed in float64.
func checkPoint(lim Limits, i int, p []float32) (float64, error) {
	var n2 float64
	for k, x := range p {
		if bad := nonFinite(x); bad != "" {
			return 0, CloudError(index2("points", i, k), "%s", bad)
		}
		n2 += float64(x) * float64(x)
	}
	if !lim.RawPoints && n2 == 0 {
		return 0, CloudError(index1("points", i), "zero vector cannot be normalized (point normalization is on)")
	}
	if lim.RawPoints && n2 > maxRawNorm2 {
		return 0, CloudError(index1("points", i), "norm %.3g is too large: squared norms and inner products would overflow float32", math.Sqrt(n2))
	}
	return n2, nil
}

// validateShape checks everything but the coordinates.
func (c Cloud) validateShape(lim Limits) error {
	if c.Dim <= 0 {
		return CloudError("dim", "dimension must be positive, got %d", c.Dim)
	}
	if lim.Dim > 0 && c.Dim != lim.Dim {
		return CloudError("points", "dimension %d does not match the required %d", c.Dim, lim.Dim)
	}
	m := len(c.Weights)
	if m == 0 && len(c.Points) == 0 {
		return CloudError("points", "cloud has no points")
	}
	if len(c.Points)%c.Dim != 0 {
		return CloudError("points", "%d values is not a whole number of points of dimension %d", len(c.Points), c.Dim)
	}
	if np := len(c.Points) / c.Dim; np != m {
		return CloudError("weights", "%d weights for %d points", m, np)
	}
	if lim.MaxPoints > 0 && m > lim.MaxPoints {
		return CloudError("points", "%d points exceeds the maximum of %d", m, lim.MaxPoints)
	}
	for i, w := range c.Weights {
		if bad := nonFinite(w); bad != "" {
			return CloudError(index1("weights", i), "%s", bad)
		}
	}
	return nil
}

func nonFinite(x float32) string {
	switch {
	case x != x:
		return "value is NaN"
	case math.IsInf(float64(x), 1):
		return "value is +Inf"
	case math.IsInf(float64(x), -1):
		return "value is -Inf"
	}
	return ""
}

func index1(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

func index2(field string, i, k int) string {
	return field + "[" + strconv.Itoa(i) + "][" + strconv.Itoa(k) + "]"
}

// NewCloud64 builds a Cloud from float64 data as decoded from JSON or
// another text format, refusing what float32 cannot hold. weights may be nil
// (every weight 1). It checks the shape (no points, ragged rows, weights
// count) and that every value fits float32 (a finite value whose magnitude
// rounds to ±Inf in float32 overflows); the remaining rules are Validate's.
func NewCloud64(weights []float64, points [][]float64) (Cloud, error) {
	if len(points) == 0 {
		return Cloud{}, CloudError("points", "cloud has no points")
	}
	d := len(points[0])
	if d == 0 {
		return Cloud{}, CloudError(index1("points", 0), "point has no coordinates")
	}
	if weights != nil && len(weights) != len(points) {
		return Cloud{}, CloudError("weights", "%d weights for %d points", len(weights), len(points))
	}
	c := Cloud{Dim: d, Weights: make([]float32, len(points)), Points: make([]float32, 0, len(points)*d)}
	for i, p := range points {
		if len(p) != d {
			return Cloud{}, CloudError(index1("points", i), "has %d coordinates, point 0 has %d", len(p), d)
		}
		for k, x := range p {
			f, err := toFloat32(x)
			if err != "" {
				return Cloud{}, CloudError(index2("points", i, k), "%s", err)
			}
			c.Points = append(c.Points, f)
		}
	}
	for i := range c.Weights {
		if weights == nil {
			c.Weights[i] = 1
			continue
		}
		f, err := toFloat32(weights[i])
		if err != "" {
			return Cloud{}, CloudError(index1("weights", i), "%s", err)
		}
		c.Weights[i] = f
	}
	return c, nil
}

func toFloat32(x float64) (float32, string) {
	if math.IsNaN(x) {
		return 0, "value is NaN"
	}
	if math.IsInf(x, 0) {
		return 0, "value is " + strconv.FormatFloat(x, 'g', -1, 64)
	}
	f := float32(x)
	if math.IsInf(float64(f), 0) {
		return 0, "value " + strconv.FormatFloat(x, 'g', -1, 64) + " overflows float32"
	}
	return f, ""
}
