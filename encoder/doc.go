// Package encoder turns inputs — images, text, and per-token features
// exported from other models — into weighted point clouds (wpcsim.Cloud).
//
// Three encoders are bundled, each registered by name for the CLI (New,
// Names):
//
//   - "patch": an image is cut into square patches; each patch is a point
//     (its pixels, optionally projected, plus its position) weighted by a
//     documented rule (PatchOptions.Weight).
//   - "text": each distinct word is a point of seeded hashed features of the
//     word and its character n-grams, weighted by IDF × saturated term
//     frequency (TextOptions).
//   - "tokens": per-token features of a model of the user's own, optionally
//     through a WPSE head (points x·P, weights 100·tanh(x·u/100)) and
//     compressed to at most M points by weighted k-means (TokensOptions).
//
// Fitted parts (a PCA of patches, the IDF of a corpus) live in a Model, a
// small JSON file written by `wpcdb encode fit`. Nothing is downloaded: an
// encoder is a pure function of its options, its Model and its inputs, so
// the same inputs give the same clouds on every run and machine.
//
// An Encoder is immutable once made and safe for concurrent use.
package encoder
