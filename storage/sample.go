package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// The imported random-feature sample stored with a collection.

// FeatureSample returns the imported random-feature sample stored with the
// collection (only when Config().Features.Imported).
func (c *Coll) FeatureSample() (wpcsim.FeatureSample, error) {
	out := wpcsim.FeatureSample{Dim: c.cfg.Dim}
	for t := 0; t < 256; t++ {
		w, errW := c.getFloats(append(collKey(c.cid, subFeatures), byte(t), 'W'))
		b, errB := c.getFloats(append(collKey(c.cid, subFeatures), byte(t), 'b'))
		if errors.Is(errW, pebble.ErrNotFound) && errors.Is(errB, pebble.ErrNotFound) {
			break
		}
		if err := errors.Join(errW, errB); err != nil {
			return out, fmt.Errorf("%w: feature sample term %d: %w", ErrCorrupt, t, err)
		}
		out.W = append(out.W, w)
		out.B = append(out.B, b)
	}
	if err := out.Validate(c.cfg.Similarity); err != nil {
		return out, fmt.Errorf("%w: stored feature sample: %w", ErrCorrupt, err)
	}
	return out, nil
}

func (c *Coll) getFloats(key []byte) ([]float32, error) {
	v, closer, err := c.store.db.Get(key)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeFloats(v)
}
