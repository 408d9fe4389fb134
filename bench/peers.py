#!/usr/bin/python3
"""Peers for `wpcdb bench`: the pipeline a Python user would build instead of
wpcdb, on the same clouds, the same queries and the same exact ground truth.

Pipeline: a first stage over one vector per cloud — the weighted centroid of
the L2-normalized points (the exact linear part of PAPER.md's kernel; wpcdb's
default first stage for kernels with a linear term) — in hnswlib (HNSW, inner
product) or FAISS (exact inner-product scan), then an exact rerank of the R
candidates with NumPy/OpenBLAS (one sgemm of the query against the stacked
candidate points, the kernel map, the weighted reduction). Single thread:
OPENBLAS_NUM_THREADS=1, hnswlib set_num_threads(1), faiss omp_set_num_threads(1).

Input: the directory written by `wpcdb bench --peers` (items_points.npy
(N, M, d) float16 with items_lengths.npy, items_weights.npy, queries_*.npy,
truth.npy (Q, k) item indices, config.json). Output: one JSON object per line
per run ({"method", "params", "threads", "recall_at_k", "qps", "p50_ms",
"p99_ms", "peer": true}), or {"skipped": name, "reason": ...} lines.

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


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    pts = np.load(os.path.join(d, "items_points.npy"))
    lens = np.load(os.path.join(d, "items_lengths.npy"))
    w = np.load(os.path.join(d, "items_weights.npy")).astype(np.float32)
    qp = np.load(os.path.join(d, "queries_points.npy")).astype(np.float32)
    qw = np.load(os.path.join(d, "queries_weights.npy")).astype(np.float32)
    truth = np.load(os.path.join(d, "truth.npy"))
    items = []
    for i in range(pts.shape[0]):
        x = pts[i, : lens[i]].astype(np.float32)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        items.append((w[i, : lens[i]], x))
    queries = []
    for j in range(qp.shape[0]):
        q = qp[j] / np.maximum(np.linalg.norm(qp[j], axis=1, keepdims=True), 1e-12)
        queries.append((qw[j], q))
    return cfg, items, queries, truth


def exact_scores(cfg, q, cands, items):
    """PAPER.md's g for one query against candidate items, batched."""
    v, qx = q
    xs = np.concatenate([items[c][1] for c in cands])
    ws = np.concatenate([items[c][0] for c in cands])
    sizes = [items[c][1].shape[0] for c in cands]
    gram = qx @ xs.T  # (N, sum M)
    total = np.zeros(gram.shape[1], dtype=np.float64)
    for term in cfg["terms"]:
        kind, alpha, param = term["kind"], term["alpha"], term["param"]
        if kind == "linear":
            k = gram
        elif kind == "gaussian":
            k = np.exp((gram - 1.0) / (param * param))
        elif kind == "imq":
            k = param / np.sqrt(param * param + np.maximum(2.0 - 2.0 * gram, 0.0))
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
    start = time.perf_counter()
    for j, q in enumerate(queries):
        t0 = time.perf_counter()
        cands = search(j, r)
        s = exact_scores(cfg, q, cands, items)
        top = np.asarray(cands)[np.argsort(-s, kind="stable")[:k]]
        lat.append((time.perf_counter() - t0) * 1000)
        found += len(set(top.tolist()) & set(truth[j].tolist()))
    secs = time.perf_counter() - start
    lat.sort()
    emit({
        "method": name, "params": dict(params, candidates=r, k=k), "threads": 1,
        "recall_at_k": found / truth.size, "qps": len(queries) / secs,
        "p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "peer": True,
    })


def main():
    d = sys.argv[1]
    cfg, items, queries, truth = load(d)
    if cfg.get("maxsim"):
        emit({"skipped": "python-pipelines", "reason": "maxsim: the NumPy pipeline implements the kernel sums only"})
        return
    if cfg.get("score", "inner") != "inner":
        emit({"skipped": "python-pipelines", "reason": "score mode %s: the NumPy pipeline ranks by g (inner) only" % cfg["score"]})
        return
    vecs = first_stage_vectors(items)
    qvecs = np.stack([(v[:, None] * q).mean(axis=0) for v, q in queries]).astype(np.float32)
    cands_list = cfg["candidates"]
    try:
        import hnswlib
        t0 = time.perf_counter()
        index = hnswlib.Index(space="ip", dim=vecs.shape[1])
        index.init_index(max_elements=len(vecs), ef_construction=200, M=16)
        index.set_num_threads(1)
        index.add_items(vecs, np.arange(len(vecs)))
        build = time.perf_counter() - t0
        for r in cands_list:
            index.set_ef(max(r, 64))
            def search(j, r):
                labels, _ = index.knn_query(qvecs[j : j + 1], k=min(r, len(vecs)))
                return labels[0].tolist()
            run_pipeline("hnswlib+numpy", search, cfg, items, queries, truth, r, {"M": 16, "ef": max(r, 64), "build_s": round(build, 2)})
    except ImportError as e:
        emit({"skipped": "hnswlib+numpy", "reason": f"python3-hnswlib is not installed ({e})"})
    try:
        import faiss
        faiss.omp_set_num_threads(1)
        index = faiss.IndexFlatIP(vecs.shape[1])
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
