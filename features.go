package wpcdb

import (
	"context"
	"fmt"

	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// newFeaturizer returns the collection's φ map: drawn from the configured
// seed, or rebuilt from the imported sample stored with the collection. A
// maxsim collection, which has no kernel mean embedding, gets a MUVERA-style
// fixed-dimensional encoding in its place.
func newFeaturizer(c *storage.Coll) (featurizer, error) {
	cfg := c.Config()
	if cfg.Similarity.Kernel.IsMaxSim() {
		return wpcsim.NewFDE(cfg.Dim, cfg.Similarity.RawPoints, wpcsim.FDEOptions{Seed: cfg.Features.Seed})
	}
	if !cfg.Features.Imported {
		return wpcsim.NewFeatureMap(cfg.Similarity, cfg.Dim, wpcsim.FeatureOptions{D: cfg.Features.Dim, Seed: cfg.Features.Seed})
	}
	s, err := c.FeatureSample()
	if err != nil {
		return nil, err
	}
	return wpcsim.NewFeatureMapFromSample(cfg.Similarity, s)
}

// CreateCollectionWithSample creates a collection whose random features use
// an imported sample (e.g. wpcsim.LoadFeatureSample of a trained model's
// W<t>.npy and b<t>.npy) instead of a seeded one. The sample is stored in
// the collection, so the directory it came from may go away.
func (db *DB) CreateCollectionWithSample(ctx context.Context, name string, cfg CollectionConfig, s wpcsim.FeatureSample) (*Collection, error) {
	cfg, err := checkNewCollection(ctx, name, cfg)
	if err != nil {
		return nil, err
	}
	if s.Dim != cfg.Dim {
		return nil, fmt.Errorf("%w: collection %q: feature sample has dimension %d, collection %d", ErrInvalidArgument, name, s.Dim, cfg.Dim)
	}
	if err := s.Validate(cfg.Similarity); err != nil {
		return nil, fmt.Errorf("collection %q: %w", name, err)
	}
	cfg.Features.Imported = true
	cfg.Features.Seed = 0
	if len(s.B) > 0 {
		cfg.Features.Dim = len(s.B[0])
	}
	c, err := db.store.CreateCollection(name, cfg, &s)
	if err != nil {
		return nil, err
	}
	return db.wrap(c)
}
