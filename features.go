package wpcdb

import "github.com/wpcdb/wpcdb/storage"

// newFeaturizer returns the collection's φ map. Until the random-feature
// map lands, collections store no φ.
func newFeaturizer(_ *storage.Coll) (featurizer, error) { return nil, nil }
