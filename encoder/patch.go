package encoder

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// PatchOptions configure the "patch" image encoder. The zero value is
// valid: 7×7 gray patches at stride 7, raw pixels, position scale 1,
// weights by ink mass.
//
// A patch is a point: its pixel values (Size²·channels of them, in [0, 1]),
// optionally projected to Dim values, followed by its position — the
// patch centre's row and column divided by the image height and width, in
// (0, 1), times PosScale. The position lets the kernel tell a sleeve at the
// top from one at the bottom; PosScale sets how much (under a gaussian
// kernel on raw points, a position offset of δ costs as much as a pixel
// difference of PosScale·δ).
//
// Patches start at 0, Stride, 2·Stride, … along each axis; when that leaves
// the last rows or columns uncovered, one more patch is placed flush with
// the edge, so every pixel is in some patch.
type PatchOptions struct {
	// Size is the patch side in pixels (default 7).
	Size int `json:"size"`
	// Stride is the step between patches (default Size: no overlap).
	Stride int `json:"stride"`
	// PosScale scales the 2-D position (default 1).
	PosScale float64 `json:"pos_scale"`
	// NoPosition leaves the position out (points are pixels only).
	NoPosition bool `json:"no_position,omitempty"`
	// Proj is "none" (default: the pixels as they are), "random" (a seeded
	// Gaussian random projection to Dim, distances kept within JL error),
	// or "pca" (the projection of a Model fitted by `wpcdb encode fit`).
	Proj string `json:"proj"`
	// Dim is the projected pixel dimension for "random" (default 16); for
	// "pca" the model's components (Dim 0: all of them; less: the first).
	Dim int `json:"dim,omitempty"`
	// Seed seeds the random projection (default 0).
	Seed uint64 `json:"seed,omitempty"`
	// Weight is the rule giving each patch its weight:
	//   - "mass" (default): the patch's mean intensity, in [0, 1] — its ink.
	//   - "contrast": the standard deviation of its values, in [0, 0.5] —
	//     edges and texture weigh most, flat regions nothing.
	//   - "signed": its mean intensity minus the image's, in [-1, 1]: the
	//     cloud is the image's deviation from flat grey, a signed measure
	//     that is unchanged by a global brightness offset and whose
	//     negative mass marks where ink is missing.
	//   - "uniform": every patch weighs 1.
	// Patches of weight 0 are left out (they add nothing to g); an image
	// with no patch left is an error.
	Weight string `json:"weight"`
	// RGB keeps three channels per pixel instead of the luminance.
	RGB bool `json:"rgb,omitempty"`
}

// Weight rules of PatchOptions.Weight.
var patchWeights = []string{"mass", "contrast", "signed", "uniform"}

// WithDefaults returns o with unset fields replaced by their defaults.
func (o PatchOptions) WithDefaults() PatchOptions {
	if o.Size == 0 {
		o.Size = 7
	}
	if o.Stride == 0 {
		o.Stride = o.Size
	}
	if o.PosScale == 0 {
		o.PosScale = 1
	}
	if o.Proj == "" {
		o.Proj = "none"
	}
	if o.Proj == "random" && o.Dim == 0 {
		o.Dim = 16
	}
	if o.Weight == "" {
		o.Weight = "mass"
	}
	return o
}

// Validate checks o after defaults and reports every problem.
func (o PatchOptions) Validate() error {
	o = o.WithDefaults()
	var bad []string
	if o.Size < 1 || o.Size > 256 {
		bad = append(bad, fmt.Sprintf("patch size %d outside [1, 256]", o.Size))
	}
	if o.Stride < 1 {
		bad = append(bad, fmt.Sprintf("stride %d must be positive", o.Stride))
	}
	if !(o.PosScale > 0) || math.IsInf(o.PosScale, 0) {
		bad = append(bad, fmt.Sprintf("position scale %g must be positive and finite", o.PosScale))
	}
	switch o.Proj {
	case "none", "pca":
	case "random":
		if o.Dim < 1 || o.Dim > 1<<14 {
			bad = append(bad, fmt.Sprintf("projection dim %d outside [1, 16384]", o.Dim))
		}
	default:
		bad = append(bad, fmt.Sprintf("projection %q: want none, random or pca", o.Proj))
	}
	if o.Dim < 0 {
		bad = append(bad, fmt.Sprintf("projection dim %d is negative", o.Dim))
	}
	ok := false
	for _, w := range patchWeights {
		ok = ok || o.Weight == w
	}
	if !ok {
		bad = append(bad, fmt.Sprintf("weight rule %q: want one of %s", o.Weight, strings.Join(patchWeights, ", ")))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: patch: %s", ErrOptions, strings.Join(bad, "; "))
	}
	return nil
}

// Patch is the "patch" image encoder. Safe for concurrent use.
type Patch struct {
	o       PatchOptions
	in      int       // pixel values per patch: Size²·channels
	proj    []float32 // out×in projection (random or PCA), nil for none
	mean    []float32 // PCA mean, nil otherwise
	out     int       // pixel dimension after projection
	posDims int       // 2, or 0 with NoPosition
}

// NewPatch makes a patch encoder. model is required for Proj "pca" and
// must hold a PCA fitted on patches of the same size and channels.
func NewPatch(o PatchOptions, model *Model) (*Patch, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.WithDefaults()
	p := &Patch{o: o, posDims: 2}
	if o.NoPosition {
		p.posDims = 0
	}
	ch := 1
	if o.RGB {
		ch = 3
	}
	p.in = o.Size * o.Size * ch
	switch o.Proj {
	case "none":
		p.out = p.in
	case "random":
		p.out = o.Dim
		rng := rand.New(rand.NewPCG(o.Seed, 0x70a7c4))
		p.proj = make([]float32, p.out*p.in)
		scale := 1 / math.Sqrt(float64(p.out))
		for i := range p.proj {
			p.proj[i] = float32(rng.NormFloat64() * scale)
		}
	case "pca":
		if model == nil || model.PCA == nil {
			return nil, fmt.Errorf("%w: patch: projection pca needs a model fitted with `wpcdb encode fit --encoder patch` (--model FILE)", ErrOptions)
		}
		pca := model.PCA
		if pca.InputDim != p.in {
			return nil, fmt.Errorf("%w: patch: the PCA model was fitted on %d values per patch, these options give %d (size %d, %d channel(s))", ErrOptions, pca.InputDim, p.in, o.Size, ch)
		}
		p.out = len(pca.Components)
		if o.Dim > 0 {
			if o.Dim > p.out {
				return nil, fmt.Errorf("%w: patch: dim %d exceeds the model's %d PCA components", ErrOptions, o.Dim, p.out)
			}
			p.out = o.Dim
		}
		p.proj = make([]float32, 0, p.out*p.in)
		for _, row := range pca.Components[:p.out] {
			for _, v := range row {
				p.proj = append(p.proj, float32(v))
			}
		}
		p.mean = make([]float32, p.in)
		for i, v := range pca.Mean {
			p.mean[i] = float32(v)
		}
	}
	return p, nil
}

// Name is "patch".
func (p *Patch) Name() string { return "patch" }

// Dim is the projected pixel dimension plus 2 for the position.
func (p *Patch) Dim() int { return p.out + p.posDims }

// Options returns the options with defaults filled in.
func (p *Patch) Options() PatchOptions { return p.o }

// Read reads a PNG, JPEG or IDX file.
func (p *Patch) Read(path string, fn func(Input) error) error {
	return readImages(path, p.o.RGB, fn)
}

// EncodeBatch encodes images in parallel.
func (p *Patch) EncodeBatch(ins []Input) ([]wpcsim.Cloud, error) {
	return encodeBatch(ins, p.Encode)
}

// image returns in's image: an *Image, an image.Image, or encoded bytes.
func (p *Patch) image(in Input) (*Image, error) {
	switch v := in.Data.(type) {
	case *Image:
		return v, nil
	case image.Image:
		return ImageFromImage(v, p.o.RGB), nil
	case []byte:
		return decodeImageBytes(in.ID, v, p.o.RGB)
	}
	return nil, inputErr(in.ID, "patch encoder wants an image, got %T", in.Data)
}

// Encode encodes one image: one point per patch.
func (p *Patch) Encode(in Input) (wpcsim.Cloud, error) {
	img, err := p.image(in)
	if err != nil {
		return wpcsim.Cloud{}, err
	}
	ch := 1
	if p.o.RGB {
		ch = 3
	}
	if img.C != ch {
		return wpcsim.Cloud{}, inputErr(in.ID, "image has %d channel(s), the encoder wants %d", img.C, ch)
	}
	if len(img.Pix) != img.W*img.H*img.C {
		return wpcsim.Cloud{}, inputErr(in.ID, "image of %d×%d×%d has %d values", img.W, img.H, img.C, len(img.Pix))
	}
	s := p.o.Size
	if img.W < s || img.H < s {
		return wpcsim.Cloud{}, inputErr(in.ID, "image of %d×%d is smaller than one %d×%d patch", img.W, img.H, s, s)
	}
	ys, xs := patchStarts(img.H, s, p.o.Stride), patchStarts(img.W, s, p.o.Stride)
	var imgMean float64
	if p.o.Weight == "signed" {
		for _, v := range img.Pix {
			imgMean += float64(v)
		}
		imgMean /= float64(len(img.Pix))
	}
	d := p.Dim()
	c := wpcsim.Cloud{Dim: d, Weights: make([]float32, 0, len(ys)*len(xs)), Points: make([]float32, 0, len(ys)*len(xs)*d)}
	buf := make([]float32, p.in)
	for _, y := range ys {
		for _, x := range xs {
			for r := 0; r < s; r++ {
				row := ((y+r)*img.W + x) * ch
				copy(buf[r*s*ch:(r+1)*s*ch], img.Pix[row:row+s*ch])
			}
			w := patchWeight(p.o.Weight, buf, imgMean)
			c.Weights = append(c.Weights, float32(w))
			c.Points = p.appendPoint(c.Points, buf)
			if p.posDims > 0 {
				c.Points = append(c.Points,
					float32(p.o.PosScale*(float64(y)+float64(s)/2)/float64(img.H)),
					float32(p.o.PosScale*(float64(x)+float64(s)/2)/float64(img.W)))
			}
		}
	}
	c = dropZeroPoints(c)
	if c.Len() == 0 {
		return wpcsim.Cloud{}, inputErr(in.ID, "no patch has a non-zero weight under rule %q (a blank image?)", p.o.Weight)
	}
	return c, nil
}

// appendPoint appends the (projected) pixel part of a point.
func (p *Patch) appendPoint(dst, pix []float32) []float32 {
	if p.proj == nil {
		return append(dst, pix...)
	}
	if p.mean != nil {
		for i := range pix {
			pix[i] -= p.mean[i]
		}
	}
	for o := 0; o < p.out; o++ {
		row := p.proj[o*p.in : (o+1)*p.in]
		var acc float32
		for i, v := range pix {
			acc += row[i] * v
		}
		dst = append(dst, acc)
	}
	return dst
}

// patchStarts returns the patch offsets along an axis of n pixels: 0,
// stride, … and, if the edge is left uncovered, n-size.
func patchStarts(n, size, stride int) []int {
	var out []int
	for o := 0; o+size <= n; o += stride {
		out = append(out, o)
	}
	if last := out[len(out)-1]; last+size < n {
		out = append(out, n-size)
	}
	return out
}

// patchWeight applies a weight rule to a patch's values.
func patchWeight(rule string, pix []float32, imgMean float64) float64 {
	if rule == "uniform" {
		return 1
	}
	var sum float64
	for _, v := range pix {
		sum += float64(v)
	}
	n := float64(len(pix))
	mean := sum / n
	switch rule {
	case "contrast":
		// Two passes, so that a flat patch weighs exactly 0.
		var ss float64
		for _, v := range pix {
			ss += (float64(v) - mean) * (float64(v) - mean)
		}
		return math.Sqrt(ss / n)
	case "signed":
		return mean - imgMean
	}
	return mean
}
