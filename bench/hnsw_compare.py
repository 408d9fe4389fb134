"""hnswlib over the first-stage vectors a `wpcdb bench` run exported for its
peers, timed by thread CPU: the reference for index.BenchmarkHNSWExported.

    /usr/bin/python3 bench/hnsw_compare.py DIR/peers [M] [ef_construction]

Prints, per ef, recall@10 against truth.npy and the CPU microseconds per
query, one query per call (as bench/peers.py times it, Python's call
overhead included) and the 200 queries in one call (hnswlib's own cost).
"""
import sys
import time

import hnswlib
import numpy as np

d = sys.argv[1]
m = int(sys.argv[2]) if len(sys.argv) > 2 else 16
efc = int(sys.argv[3]) if len(sys.argv) > 3 else 200
x = np.load(f"{d}/first_stage_items.npy")
q = np.load(f"{d}/first_stage_queries.npy")
truth = np.load(f"{d}/truth.npy")
index = hnswlib.Index(space="ip", dim=x.shape[1])
index.init_index(max_elements=len(x), ef_construction=efc, M=m)
index.set_num_threads(1)
t0 = time.thread_time()
index.add_items(x, np.arange(len(x)))
print(f"n={len(x)} dim={x.shape[1]} M={m} efc={efc}: built in {time.thread_time() - t0:.2f} CPU s")
for ef in (16, 32, 64, 128, 256):
    index.set_ef(ef)
    labels, _ = index.knn_query(q, k=10)
    recall = np.mean([len(set(labels[i]) & set(truth[i])) / 10 for i in range(len(q))])
    reps = max(1, 20000 // len(q) // max(1, ef // 16))
    t0 = time.thread_time()
    for _ in range(reps):
        for j in range(len(q)):
            index.knn_query(q[j : j + 1], k=10)
    one = (time.thread_time() - t0) / (reps * len(q)) * 1e6
    t0 = time.thread_time()
    for _ in range(reps):
        index.knn_query(q, k=10)
    batch = (time.thread_time() - t0) / (reps * len(q)) * 1e6
    print(f"ef={ef:4d} recall@10 {recall:.3f}  cpu us/q: one-by-one {one:6.1f}  batch {batch:6.1f}")
