#!/usr/bin/python3
"""Peers for `wpcdb bench`: the pipeline a Python user would build instead of
wpcdb, on the same clouds, the same queries and the same exact ground truth.

Pipelines: a first stage over one vector per cloud, then an exact rerank of
the R candidates with NumPy/OpenBLAS (one sgemm of the query against the
stacked candidate points, the kernel map — or MaxSim's per-item max — and the
weighted reduction; for cosine and mmd, with each item's g(X, X) computed
once at load, as a user would at ingest). First stages:
- "hnswlib+numpy", "faiss-flat+numpy": the weighted centroid of the points
  (L2-normalized unless the collection keeps raw points; the exact linear
  part of PAPER.md's kernel), in hnswlib (HNSW) or FAISS (exact scan), by
  inner product (normalized for cosine, L2 for mmd). Kernel sums only: a
  centroid is no proxy for MaxSim.
- "hnswlib-phi+numpy": hnswlib over wpcdb's own first-stage vectors
  (first_stage_*.npy: φ, or the FDE for maxsim, as wpcdb's index holds them).
- "usearch-phi+numpy": usearch's candidates over the same vectors, found by
  bench/peers-node/peers.js (which ran first and left their ids and per-query
  search times in usearch_candidates.jsonl); here each query's candidates
  are reranked exactly like the others and the query's latency is usearch's
  search time plus this rerank's time.
And "hnswlib-phi": hnswlib over wpcdb's first-stage vectors answering top k
alone, no rerank (the first stage compared with usearch-phi on equal terms).
Single thread: OPENBLAS_NUM_THREADS=1, hnswlib set_num_threads(1), faiss
omp_set_num_threads(1).

Input: the directory written by `wpcdb bench --peers` (items_points.npy
(N, M, d) float16 or float32 with items_lengths.npy, items_weights.npy,
queries_points.npy (Q, P, d) padded with queries_lengths.npy and
queries_weights.npy, truth.npy (Q, k) item indices, config.json, and optionally
first_stage_items.npy (N, D'), first_stage_queries.npy (Q, D') and
usearch_candidates.jsonl). Output: one JSON object per line per run
({"method", "params", "threads", "recall_at_k", "qps", "p50_ms", "p99_ms",
"peer": true}), or {"skipped": name, "reason": ...} lines.

Install: apt-get install -y python3-numpy libopenblas0-pthread python3-hnswlib python3-faiss
"""
import json
import os
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(var, None)

import numpy as np  # noqa: E402


def emit(obj):
    print(json.dumps(obj), flush=True)


class Items:
    """The items as (weights, points) pairs, points normalized unless the
    collection keeps raw points, from a float32 copy of the points without
    padding (items_points_prepared.npy, written once beside the export,
    untimed, as an ingest would) that is memory-mapped, not loaded: at
    colbert 100k the points are 9.2 GB as float32 (and the padded float16
    export 7.7 GB), more than this shared machine can hold beside the
    others. A reranked candidate's points are a slice of the map (page cache,
    like wpcdb's own reads), never converted or normalized at query time."""

    def __init__(self, d, raw):
        pts = np.load(os.path.join(d, "items_points.npy"), mmap_mode="r")
        self.lens = np.load(os.path.join(d, "items_lengths.npy")).astype(np.int64)
        self.w = np.load(os.path.join(d, "items_weights.npy"), mmap_mode="r")
        self.start = np.concatenate([[0], np.cumsum(self.lens)])
        total, dim = int(self.start[-1]), pts.shape[2]
        path = os.path.join(d, "items_points_prepared.npy")
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(total, dim))
        for lo in range(0, pts.shape[0], 1000):
            for i in range(lo, min(lo + 1000, pts.shape[0])):
                x = np.asarray(pts[i, : self.lens[i]], dtype=np.float32)
                if not raw:
                    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
                out[self.start[i] : self.start[i + 1]] = x
        out.flush()
        del out, pts
        self.pts = np.load(path, mmap_mode="r")

    def __len__(self):
        return len(self.lens)

    def __getitem__(self, i):
        a, b = self.start[i], self.start[i + 1]
        return np.asarray(self.w[i, : self.lens[i]], dtype=np.float32), self.pts[a:b]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    qp = np.load(os.path.join(d, "queries_points.npy")).astype(np.float32)
    qw = np.load(os.path.join(d, "queries_weights.npy")).astype(np.float32)
    ql_path = os.path.join(d, "queries_lengths.npy")
    qlens = np.load(ql_path) if os.path.exists(ql_path) else np.full(qp.shape[0], qp.shape[1])
    raw = cfg.get("raw_points", False)
    truth = np.load(os.path.join(d, "truth.npy"))
    first = None
    if cfg.get("first_stage_dim"):
        first = (np.load(os.path.join(d, "first_stage_items.npy")), np.load(os.path.join(d, "first_stage_queries.npy")))
    items = Items(d, raw)
    queries = []
    for j in range(qp.shape[0]):
        q = qp[j, : qlens[j]]
        if not raw:
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        queries.append((qw[j, : qlens[j]], q))
    return cfg, items, queries, truth, first


def exact_scores(cfg, q, cands, items):
    """The collection's exact score of one query against candidate items,
    batched, higher is closer: g or maxsim (inner), g/sqrt(gQQ gXX)
    (cosine), -sqrt(gQQ + gXX - 2g) (mmd). cfg["_selfs"][i] is
    g(X_i, X_i), computed once when the peer loads the items (untimed, as an
    index build); g(Q, Q) is computed per query, timed."""
    g = raw_scores(cfg, q, cands, items)
    score = cfg.get("score", "inner")
    if score == "inner" or cfg.get("maxsim"):
        return g
    gqq = raw_scores(cfg, q, [None], [q])[0]
    gxx = cfg["_selfs"][np.asarray(cands)]
    if score == "cosine":
        den = np.sqrt(np.maximum(gqq * gxx, 0.0))
        return np.where(den > 0, g / np.where(den > 0, den, 1.0), 0.0)
    return -np.sqrt(np.maximum(gqq + gxx - 2.0 * g, 0.0))


def self_scores(cfg, items):
    """g(X, X) of every item (cosine and mmd)."""
    return np.array([raw_scores(cfg, it, [None], [it])[0] for it in items])


def raw_scores(cfg, q, cands, items):
    """PAPER.md's g (or maxsim) of one query against candidate items; a
    candidate None means items[0] (used for self scores)."""
    v, qx = q
    rows = [items[0] if c is None else items[c] for c in cands]
    xs = np.concatenate([r[1] for r in rows])
    sizes = [r[1].shape[0] for r in rows]
    gram = qx @ xs.T  # (N, sum M)
    raw = cfg.get("raw_points", False)
    if raw:
        # squared distances from the norms, in float64 against cancellation
        d2 = np.maximum((qx.astype(np.float64) ** 2).sum(1)[:, None] + (xs.astype(np.float64) ** 2).sum(1)[None, :] - 2.0 * gram, 0.0)
    else:
        d2 = np.maximum(2.0 - 2.0 * gram, 0.0)
    if cfg.get("maxsim"):
        # maxsim(Q, X) = c * sum_i v_i max_j <q_i, x_j>; item weights unused.
        best = np.maximum.reduceat(gram, np.cumsum([0] + sizes[:-1]), axis=1)
        out = v.astype(np.float64) @ best
        return out / qx.shape[0] if cfg["norm"] == "mean" else out
    ws = np.concatenate([r[0] for r in rows])
    total = np.zeros(gram.shape[1], dtype=np.float64)
    for term in cfg["terms"]:
        kind, alpha, param = term["kind"], term["alpha"], term["param"]
        if kind == "linear":
            k = gram
        elif kind == "gaussian":
            k = np.exp(-d2 / (2.0 * param * param))
        elif kind == "imq":
            k = param / np.sqrt(param * param + d2)
        else:
            raise ValueError(kind)
        total += alpha * (v @ k)
    contrib = total * ws
    out = np.add.reduceat(contrib, np.cumsum([0] + sizes[:-1]))
    if cfg["norm"] == "mean":
        out = out / (qx.shape[0] * np.array(sizes, dtype=np.float64))
    return out


def first_stage_vectors(items):
    return np.stack([(w[:, None] * x).mean(axis=0) for w, x in items]).astype(np.float32)


def run_pipeline(name, search, cfg, items, queries, truth, r, params):
    k = truth.shape[1]
    lat, found = [], 0
    start, cpu0 = time.perf_counter(), time.process_time()
    for j, q in enumerate(queries):
        t0 = time.perf_counter()
        cands = search(j, r)
        s = exact_scores(cfg, q, cands, items)
        top = np.asarray(cands)[np.argsort(-s, kind="stable")[:k]]
        lat.append((time.perf_counter() - t0) * 1000)
        found += len(set(top.tolist()) & set(truth[j].tolist()))
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu0
    lat.sort()
    emit({
        "method": name, "params": dict(params, candidates=r, k=k), "threads": 1,
        "recall_at_k": found / truth.size, "qps": len(queries) / secs,
        "p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "cpu_ms_per_query": cpu * 1000 / len(queries),
        "peer": True,
    })


def rerank_usearch(d, cfg, items, queries, truth):
    """usearch first stage (timed in node) + this exact rerank, per query."""
    path = os.path.join(d, "usearch_candidates.jsonl")
    if not os.path.exists(path):
        return  # peers.js did not run: Go lists usearch as skipped
    k = truth.shape[1]
    for line in open(path):
        rec = json.loads(line)
        lat, found = [], 0
        cpu0 = time.process_time()
        for j, q in enumerate(queries):
            cands = rec["ids"][j]
            t0 = time.perf_counter()
            s = exact_scores(cfg, q, cands, items)
            top = np.asarray(cands)[np.argsort(-s, kind="stable")[:k]]
            lat.append(rec["search_ms"][j] + (time.perf_counter() - t0) * 1000)
            found += len(set(top.tolist()) & set(truth[j].tolist()))
        secs = sum(lat) / 1000
        # CPU: the reranks' process time plus usearch's searches (their wall
        # time times the CPU/wall ratio node measured over its loop).
        cpu = time.process_time() - cpu0 + sum(rec["search_ms"]) / 1000 * rec["cpu_per_wall"]
        lat.sort()
        emit({
            "method": "usearch-phi+numpy",
            "params": dict(rec["params"], candidates=rec["candidates"], k=k, usearch_cpu_per_wall=round(rec["cpu_per_wall"], 2)),
            "threads": 1, "recall_at_k": found / truth.size, "qps": len(queries) / secs,
            "p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "queries": len(queries), "cpu_ms_per_query": cpu * 1000 / len(queries), "peer": True,
        })


def run_first_stage_alone(name, search, queries, truth, params):
    k = truth.shape[1]
    lat, found = [], 0
    start, cpu0 = time.perf_counter(), time.process_time()
    for j in range(len(queries)):
        t0 = time.perf_counter()
        top = search(j, k)
        lat.append((time.perf_counter() - t0) * 1000)
        found += len(set(top) & set(truth[j].tolist()))
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu0
    lat.sort()
    emit({
        "method": name, "params": dict(params, k=k), "threads": 1,
        "recall_at_k": found / truth.size, "qps": len(queries) / secs,
        "p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "queries": len(queries), "cpu_ms_per_query": cpu * 1000 / len(queries), "peer": True,
    })


def knn(index, q, k):
    """hnswlib's top k; when its walk finds fewer than k (it raises, e.g. on
    many equal vectors), the ones it found, from a wider beam."""
    try:
        labels, _ = index.knn_query(q, k=k)
        return labels
    except RuntimeError:
        for kk in range(k - 1, 0, -1):
            try:
                labels, _ = index.knn_query(q, k=kk)
                return labels
            except RuntimeError:
                continue
        return np.zeros((1, 0), dtype=np.int64)


def hnsw_index(hnswlib, vecs, space="ip"):
    t0 = time.perf_counter()
    index = hnswlib.Index(space=space, dim=vecs.shape[1])
    index.init_index(max_elements=len(vecs), ef_construction=200, M=16)
    index.set_num_threads(1)
    index.add_items(vecs, np.arange(len(vecs)))
    return index, time.perf_counter() - t0


def run_on_first_stage(cfg, items, queries, truth, first, rerank):
    """hnswlib over wpcdb's first-stage vectors: alone, and + exact rerank."""
    vecs, qvecs = first
    try:
        import hnswlib
    except ImportError as e:
        for name in ("hnswlib-phi", "hnswlib-phi+numpy"):
            emit({"skipped": name, "reason": f"python3-hnswlib is not installed ({e})"})
        return
    # wpcdb's metric for these vectors: "ip", or "l2" for the mmd score.
    index, build = hnsw_index(hnswlib, vecs, cfg.get("first_stage_metric") or "ip")
    base = {"M": 16, "ef_construction": 200, "build_s": round(build, 2), "dim": vecs.shape[1]}
    for ef in (16, 32, 64, 128, 256):
        index.set_ef(ef)
        def search(j, k):
            labels = knn(index, qvecs[j : j + 1], k)
            return labels[0].tolist()
        run_first_stage_alone("hnswlib-phi", search, queries, truth, dict(base, ef=ef))
    if not rerank:
        return
    for r in cfg["candidates"]:
        index.set_ef(max(r, 64))
        def search(j, r):
            labels = knn(index, qvecs[j : j + 1], min(r, len(vecs)))
            return labels[0].tolist()
        run_pipeline("hnswlib-phi+numpy", search, cfg, items, queries, truth, r, dict(base, ef=max(r, 64)))


def main():
    d = sys.argv[1]
    cfg, items, queries, truth, first = load(d)
    # The exact rerank ranks by every score mode; cosine and mmd need each
    # item's g(X, X), computed here once, as a Python user would at ingest.
    if cfg.get("score", "inner") != "inner" and not cfg.get("maxsim"):
        cfg["_selfs"] = self_scores(cfg, items)
    rerank = True
    if first is not None:
        run_on_first_stage(cfg, items, queries, truth, first, rerank)
    rerank_usearch(d, cfg, items, queries, truth)
    if cfg.get("maxsim"):
        for name in ("hnswlib+numpy", "faiss-flat+numpy"):
            emit({"skipped": name, "reason": "maxsim: a weighted centroid is no proxy for MaxSim (see hnswlib-phi+numpy for the FDE first stage)"})
        return
    vecs = first_stage_vectors(items)
    qvecs = np.stack([(v[:, None] * q).mean(axis=0) for v, q in queries]).astype(np.float32)
    # Centroids compared as the score mode compares clouds: normalized for
    # cosine, by L2 distance for mmd, by inner product for inner.
    space = "ip"
    if cfg.get("score") == "cosine":
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        qvecs /= np.maximum(np.linalg.norm(qvecs, axis=1, keepdims=True), 1e-12)
    elif cfg.get("score") == "mmd":
        space = "l2"
    cands_list = cfg["candidates"]
    try:
        import hnswlib
        index, build = hnsw_index(hnswlib, vecs, space)
        for r in cands_list:
            index.set_ef(max(r, 64))
            def search(j, r):
                labels = knn(index, qvecs[j : j + 1], min(r, len(vecs)))
                return labels[0].tolist()
            run_pipeline("hnswlib+numpy", search, cfg, items, queries, truth, r, {"M": 16, "ef": max(r, 64), "build_s": round(build, 2)})
    except ImportError as e:
        emit({"skipped": "hnswlib+numpy", "reason": f"python3-hnswlib is not installed ({e})"})
    try:
        import faiss
        faiss.omp_set_num_threads(1)
        index = faiss.IndexFlatL2(vecs.shape[1]) if space == "l2" else faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        for r in cands_list:
            def search(j, r):
                _, labels = index.search(qvecs[j : j + 1], min(r, len(vecs)))
                return labels[0].tolist()
            run_pipeline("faiss-flat+numpy", search, cfg, items, queries, truth, r, {})
    except ImportError as e:
        emit({"skipped": "faiss-flat+numpy", "reason": f"python3-faiss is not installed ({e})"})


if __name__ == "__main__":
    main()
