// Package demodata embeds the small real dataset of `wpcdb demo` and of the
// tests that need real images: a Fashion-MNIST subset (see fmnist/README.md
// for its source and license), so both run anywhere the binary does.
package demodata

import (
	"bytes"
	"embed"
	"fmt"
	"io"

	"github.com/wpcdb/wpcdb/internal/idx"
)

//go:embed fmnist/*.gz fmnist/README.md
var files embed.FS

// Classes names the ten Fashion-MNIST labels.
var Classes = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// Images holds 28×28 grey images and their labels.
type Images struct {
	Pixels [][]byte // one 784-byte image each
	Labels []int
}

// FashionMNIST returns the embedded subset: 3,000 training images and 100
// test images.
func FashionMNIST() (train, test Images, err error) {
	if train, err = load("fmnist/train-images-idx3-ubyte.gz", "fmnist/train-labels-idx1-ubyte.gz"); err != nil {
		return
	}
	test, err = load("fmnist/t10k-images-idx3-ubyte.gz", "fmnist/t10k-labels-idx1-ubyte.gz")
	return
}

func load(images, labels string) (Images, error) {
	var out Images
	read := func(name string, fn func([]byte)) error {
		b, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		r, err := idx.NewReader(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for {
			item, err := r.Next(nil)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fn(item)
		}
	}
	if err := read(images, func(b []byte) { out.Pixels = append(out.Pixels, b) }); err != nil {
		return out, err
	}
	if err := read(labels, func(b []byte) { out.Labels = append(out.Labels, int(b[0])) }); err != nil {
		return out, err
	}
	if len(out.Pixels) != len(out.Labels) {
		return out, fmt.Errorf("demodata: %d images but %d labels", len(out.Pixels), len(out.Labels))
	}
	return out, nil
}
