package encoder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register JPEG for image.Decode
	_ "image/png"  // register PNG for image.Decode
	"io"
	"os"
	"strconv"

	"github.com/wpcdb/wpcdb/internal/idx"
)

// Image is a decoded image: H rows of W pixels of C channels (1: gray, 3:
// RGB), row-major with channels interleaved, each value in [0, 1].
type Image struct {
	W, H, C int
	Pix     []float32
}

// ImageFromImage converts a decoded image to gray (rgb false) or RGB values
// in [0, 1]. Gray is the luminance image/color computes (Rec. 601).
func ImageFromImage(m image.Image, rgb bool) *Image {
	b := m.Bounds()
	out := &Image{W: b.Dx(), H: b.Dy(), C: 1}
	if rgb {
		out.C = 3
	}
	out.Pix = make([]float32, 0, out.W*out.H*out.C)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := m.At(x, y)
			if rgb {
				r, g, bl, _ := c.RGBA()
				out.Pix = append(out.Pix, float32(r)/0xffff, float32(g)/0xffff, float32(bl)/0xffff)
			} else {
				out.Pix = append(out.Pix, float32(color.Gray16Model.Convert(c).(color.Gray16).Y)/0xffff)
			}
		}
	}
	return out
}

// ImageFromBytes makes a gray image from 8-bit values (an IDX image: 0 is
// background, 255 full ink), scaled to [0, 1].
func ImageFromBytes(w, h int, pix []byte) *Image {
	out := &Image{W: w, H: h, C: 1, Pix: make([]float32, len(pix))}
	for i, v := range pix {
		out.Pix[i] = float32(v) / 255
	}
	return out
}

// readImages calls fn with each image of the file at path: one for a PNG
// or JPEG (ID: path as given), one per image for an IDX file, gzipped or not
// (ID: the image index).
func readImages(path string, rgb bool, fn func(Input) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	head, _ := br.Peek(4)
	isIDX := len(head) >= 3 && head[0] == 0 && head[1] == 0 && head[2] == 0x08
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		isIDX = true // gzipped: the MNIST family ships .idx*-ubyte.gz
	}
	if !isIDX {
		m, format, err := image.Decode(br)
		if err != nil {
			if errors.Is(err, image.ErrFormat) {
				return inputErr(path, "not a PNG, JPEG or IDX file")
			}
			return inputErr(path, "decoding image: %v", err)
		}
		_ = format
		return fn(Input{ID: path, Data: ImageFromImage(m, rgb)})
	}
	r, err := idx.NewReader(br)
	if err != nil {
		return inputErr(path, "%v", err)
	}
	var w, h, c int
	switch len(r.Dims) {
	case 3:
		h, w, c = r.Dims[1], r.Dims[2], 1
	case 4:
		h, w, c = r.Dims[1], r.Dims[2], r.Dims[3]
	}
	if c != 1 && c != 3 {
		return inputErr(path, "IDX dimensions %v are not images (want (N, rows, cols) or (N, rows, cols, 1|3)); is this a label file?", r.Dims)
	}
	if c == 3 && !rgb {
		return inputErr(path, "IDX images have 3 channels: encode them with the rgb option (--rgb)")
	}
	if c == 1 && rgb {
		return inputErr(path, "IDX images are gray: leave out the rgb option (--rgb)")
	}
	var buf []byte
	for i := 0; ; i++ {
		buf, err = r.Next(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return inputErr(path, "%v", err)
		}
		img := &Image{W: w, H: h, C: c, Pix: make([]float32, len(buf))}
		for k, v := range buf {
			img.Pix[k] = float32(v) / 255
		}
		if err := fn(Input{ID: strconv.Itoa(i), Data: img}); err != nil {
			return err
		}
	}
}

// decodeImageBytes decodes a PNG or JPEG held in memory.
func decodeImageBytes(id string, b []byte, rgb bool) (*Image, error) {
	m, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, inputErr(id, "decoding image: %v", err)
	}
	return ImageFromImage(m, rgb), nil
}
