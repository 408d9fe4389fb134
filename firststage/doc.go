// Package firststage is a collection's first stage, in one place: which
// vector stands for a cloud (the representation: φ, the weighted centroid,
// φ projected on principal directions, or maxsim's FDE), how item and query
// vectors are made from it for each score mode (Map), how a collection
// chooses it by measured recall on its own data (Calibrate), and candidate
// generation over the index holding the vectors (Stage.Candidates, which
// package query calls through a one-method interface).
//
// It sits between wpcsim/index/storage, which it uses, and query, which
// uses it. It also holds a Stage's lifecycle over storage (lifecycle.go:
// the index options, Build from the items' vectors, LoadSaved with the
// change-log replay, Save); the root package decides when each runs,
// holds the collection's locks meanwhile, and swaps a whole Stage when a
// calibration changes the representation.
//
// # Exactness
//
// A first stage only prunes, except in one case: with the linear kernel
// alone, g(Q, X) is the inner product of the weighted centroids (PAPER.md),
// so the centroid representation's score is the exact score, and
// Stage.Candidates returns the top k with exact scores (cosine and mmd
// derived from the exact self terms) instead of candidates to rerank.
//
// # Format
//
// The chosen representation is saved beside the index it built, as one
// blob drawn at MarshalRepresentation.
package firststage
