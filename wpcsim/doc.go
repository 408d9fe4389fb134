// Package wpcsim is the mathematics of wpcdb: weighted point clouds, kernel
// specs, score modes and the exact similarity of PAPER.md (the project's
// restatement of Uesaka et al., "Weighted Point Cloud Embedding for
// Multimodal Contrastive Learning Toward Optimal Similarity Metric").
//
// A query cloud Q = {(v_i, q_i)}, i < N, and an item X = {(w_j, x_j)}, j < M,
// have the similarity
//
//	g(Q, X) = Σ_t α_t · c · Σ_i Σ_j v_i w_j k_t(q̂_i, x̂_j)
//
// with c = 1/(N·M) (NormMean) or 1 (NormSum), points L2-normalized unless
// Config.RawPoints, and base kernels linear, gaussian(σ) and imq(c). The
// score modes are g itself (inner), the cosine of the kernel mean embeddings
// and their MMD distance. MaxSim (ColBERT late interaction) is a kernel spec
// of its own, scored only in inner mode.
//
// # Exactness
//
// Scores follow PAPER.md's tolerance: |g - g_exact| ≤ 1e-4·|g_exact| +
// 1e-6·m(Q,X), where the mass m bounds the sum of the absolute terms. The
// Gram matrix is computed in float32; kernel maps and reductions in float64.
// The random-feature map φ, an estimate used to prune, is float32
// throughout (a GEMM, a polynomial cosine, float32 sums): within about
// 3e-7·Σ|w| of φ in float64 (see FeatureMap).
//
// # Use
//
//	sim, err := wpcsim.New(wpcsim.Config{})     // the paper's kernel
//	sc, err := sim.NewScorer(query)              // bind the query once
//	scores, err := sc.ScoreBatch(items, nil)    // many items, one Gram each chunk
//
// A Similarity is safe for concurrent use; a Scorer is not (make one per
// goroutine).
package wpcsim
