package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/encoder"
	"github.com/wpcdb/wpcdb/internal/demodata"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Representations of Fashion-MNIST images in the fmnist search workload.
const (
	// FMNISTPixels: one point per image, its 784 pixels scaled to [0, 1].
	FMNISTPixels = "pixels"
	// FMNISTPatches: the patch clouds of `wpcdb demo` (FMNISTKernelSetting).
	FMNISTPatches = "patches"
)

// FMNISTWorkload is Fashion-MNIST as a search workload: the first N
// training images are the items, test images the queries, each encoded
// as Repr says. It is a Source, safe for concurrent use.
type FMNISTWorkload struct {
	Repr        string
	N           int
	Train, Test MNISTSet
	patch       *encoder.Patch // FMNISTPatches
}

// NewFMNISTWorkload loads the IDX files in dir (FashionMNISTDir when
// empty) and keeps the first n training images (0 or more than there are:
// all).
func NewFMNISTWorkload(dir, repr string, n int) (*FMNISTWorkload, error) {
	if dir == "" {
		dir = FashionMNISTDir
	}
	w := &FMNISTWorkload{Repr: repr}
	switch repr {
	case FMNISTPixels:
	case FMNISTPatches:
		p, err := encoder.NewPatch(FMNISTKernelSetting.Patch, nil)
		if err != nil {
			return nil, err
		}
		w.patch = p
	default:
		return nil, fmt.Errorf("bench: unknown Fashion-MNIST representation %q (want %s or %s)", repr, FMNISTPixels, FMNISTPatches)
	}
	var err error
	if w.Train, err = LoadMNIST(dir, "train"); err != nil {
		return nil, err
	}
	if w.Test, err = LoadMNIST(dir, "t10k"); err != nil {
		return nil, err
	}
	w.N = n
	if n <= 0 || n > w.Train.Len() {
		w.N = w.Train.Len()
	}
	return w, nil
}

// Similarity is the representation's similarity: for pixels the linear
// kernel on normalized points (with one point per cloud, the cosine of
// the pixel vectors); for patches the demo's gaussian(4) on raw points,
// cosine score.
func (w *FMNISTWorkload) Similarity() wpcsim.Config {
	if w.Repr == FMNISTPixels {
		k, _ := wpcsim.ParseKernel("linear")
		return wpcsim.Config{Kernel: k}
	}
	return FMNISTPatchSimilarity()
}

// FMNISTPatchSimilarity is the similarity of FMNISTKernelSetting's patch
// clouds, the one `wpcdb demo` and the fmnist workload use: gaussian(4) on
// raw points, cosine score.
func FMNISTPatchSimilarity() wpcsim.Config {
	k, _ := wpcsim.ParseKernel(FMNISTKernelConfig.Kernel())
	return wpcsim.Config{Kernel: k, RawPoints: !FMNISTKernelSetting.Normalize, Score: FMNISTKernelConfig.Mode}
}

// Encoding describes the representation for reports and the truth cache.
func (w *FMNISTWorkload) Encoding() string {
	if w.Repr == FMNISTPixels {
		return "pixels: one point of 784 values in [0, 1]"
	}
	o := w.patch.Options()
	return fmt.Sprintf("patches: %d×%d at stride %d, position scale %g, weight %s, projection %s", o.Size, o.Size, o.Stride, o.PosScale, o.Weight, o.Proj)
}

// Shape returns the dimension of a point and the most points of a cloud.
func (w *FMNISTWorkload) Shape() (dim, maxPoints int) {
	if w.Repr == FMNISTPixels {
		return w.Train.W * w.Train.H, 1
	}
	o := w.patch.Options()
	per := func(n int) int { return (n-o.Size+o.Stride-1)/o.Stride + 1 } // patchStarts' count, the edge patch included
	return w.patch.Dim(), per(w.Train.H) * per(w.Train.W)
}

// Item returns training image i as item "train-%05d" with attributes
// class (its name) and label (0–9).
func (w *FMNISTWorkload) Item(i int) (wpcdb.Item, error) {
	c, err := w.encode(w.Train, i)
	if err != nil {
		return wpcdb.Item{}, err
	}
	label := int(w.Train.Labels[i])
	return wpcdb.Item{ID: fmt.Sprintf("train-%05d", i), Cloud: c,
		Attrs: map[string]any{"class": demodata.Classes[label%len(demodata.Classes)], "label": float64(label)}}, nil
}

// Queries returns the first q test images (all when q ≤ 0 or more).
func (w *FMNISTWorkload) Queries(q int) ([]wpcsim.Cloud, error) {
	if q <= 0 || q > w.Test.Len() {
		q = w.Test.Len()
	}
	out := make([]wpcsim.Cloud, q)
	for j := range out {
		c, err := w.encode(w.Test, j)
		if err != nil {
			return nil, fmt.Errorf("bench: test image %d: %w", j, err)
		}
		out[j] = c
	}
	return out, nil
}

// DataSHA256 is the hex SHA-256 of the images and labels used: the first
// N training images and the first q test images.
func (w *FMNISTWorkload) DataSHA256(q int) string {
	h := sha256.New()
	px := w.Train.W * w.Train.H
	fmt.Fprintf(h, "%d×%d n=%d q=%d\n", w.Train.W, w.Train.H, w.N, q)
	h.Write(w.Train.Images[:w.N*px])
	h.Write(w.Train.Labels[:w.N])
	h.Write(w.Test.Images[:q*px])
	h.Write(w.Test.Labels[:q])
	return hex.EncodeToString(h.Sum(nil))
}

func (w *FMNISTWorkload) encode(s MNISTSet, i int) (wpcsim.Cloud, error) {
	img := s.Image(i)
	if w.Repr == FMNISTPixels {
		c := wpcsim.Cloud{Dim: len(img), Weights: []float32{1}, Points: make([]float32, len(img))}
		for k, b := range img {
			c.Points[k] = float32(b) / 255
		}
		return c, nil
	}
	return w.patch.Encode(encoder.Input{ID: fmt.Sprint(i), Data: encoder.ImageFromBytes(s.W, s.H, img)})
}
