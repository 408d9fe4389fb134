#!/usr/bin/python3
"""NumPy/OpenBLAS baseline for wpcdb's exact scorer at the paper's shape.

Computes the exact similarity of PAPER.md with kernel
0.667*linear + 0.333*gaussian(0.5), mean normalization, L2-normalized
points: one query (77x512, signed weights) against a batch of 200 items
(each 197x512, signed weights) per call, the way a batched exact scan
would: one sgemm of the query against the stacked items, the kernel map,
then the weighted reduction.

Prints one JSON line: pairs/s (median over repeats) and, from the same
run, the GFLOP/s of the 77x512x(200*197) sgemm alone, so Go's Gram can be
compared with it. Single-threaded: OPENBLAS_NUM_THREADS=1 is forced here,
before numpy loads, and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed
so OpenBLAS picks its kernel for this CPU itself.

Usage: /usr/bin/python3 bench/numpy_exact.py [--repeats N] [--seed S]
Needs: apt-get install -y python3-numpy libopenblas0-pthread
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(var, None)

import numpy as np  # noqa: E402  (must follow the environment above)

N_Q, M_X, DIM, BATCH = 77, 197, 512, 200
ALPHA_LIN, ALPHA_GAUSS, SIGMA = 0.667, 0.333, 0.5


def normalized(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def weights(rng, shape):
    # Signed, bounded like the paper's 100*tanh(t/100) head; a few units.
    return (100 * np.tanh(rng.normal(0.0, 3.0, shape) / 100)).astype(np.float32)


class Scorer:
    """Holds the query and preallocated buffers; score() does one batch."""

    def __init__(self, q, v, batch_rows):
        self.q = q
        self.v = v
        self.g = np.empty((q.shape[0], batch_rows), dtype=np.float32)
        self.e = np.empty_like(self.g)
        self.c = np.float32(1.0 / (N_Q * M_X))
        self.inv = np.float32(1.0 / (SIGMA * SIGMA))  # exp(-(2-2g)/(2s^2)) = exp((g-1)/s^2)

    def gram(self, xs):
        np.matmul(self.q, xs.T, out=self.g)

    def score(self, xs, w):
        g, e = self.g, self.e
        np.matmul(self.q, xs.T, out=g)
        np.subtract(g, np.float32(1), out=e)
        np.multiply(e, self.inv, out=e)
        np.exp(e, out=e)
        np.multiply(e, np.float32(ALPHA_GAUSS), out=e)
        np.multiply(g, np.float32(ALPHA_LIN), out=g)
        np.add(g, e, out=g)
        s = self.v @ g  # (BATCH*M_X,)
        return (s.reshape(w.shape) * w).sum(axis=1) * self.c


def exact64(q, v, x, w):
    g = q.astype(np.float64) @ x.astype(np.float64).T
    k = ALPHA_LIN * g + ALPHA_GAUSS * np.exp(-(2 - 2 * g) / (2 * SIGMA**2))
    return float(v.astype(np.float64) @ k @ w.astype(np.float64)) / (N_Q * M_X)


def median_time(f, repeats, warmup=3):
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    q = normalized(rng, (N_Q, DIM))
    v = weights(rng, N_Q)
    xs = normalized(rng, (BATCH * M_X, DIM))  # the batch, items stacked
    w = weights(rng, (BATCH, M_X))
    scorer = Scorer(q, v, BATCH * M_X)

    # Check one item against a float64 evaluation of the definition.
    got = scorer.score(xs, w)
    for b in (0, BATCH - 1):
        want = exact64(q, v, xs[b * M_X:(b + 1) * M_X], w[b])
        mass = (np.abs(v).astype(np.float64) @ np.ones((N_Q, M_X)) @ np.abs(w[b]).astype(np.float64)) / (N_Q * M_X)
        if abs(got[b] - want) > 1e-4 * abs(want) + 1e-6 * mass:
            sys.exit(f"numpy_exact: item {b} scored {got[b]}, float64 says {want}")

    t_score = median_time(lambda: scorer.score(xs, w), args.repeats)
    t_gemm = median_time(lambda: scorer.gram(xs), args.repeats)
    flops = 2.0 * N_Q * DIM * BATCH * M_X
    print(json.dumps({
        "method": "numpy-openblas",
        "threads": 1,
        "pairs_per_s": round(BATCH / t_score, 1),
        "batch": BATCH,
        "shape": f"{N_Q}x{DIM} vs {BATCH}x{M_X}x{DIM}",
        "kernel": "0.667*linear+0.333*gaussian(0.5), mean, normalized",
        "sgemm_gflop_s": round(flops / t_gemm / 1e9, 1),
        "sgemm_shape": f"{N_Q}x{DIM}x{BATCH * M_X}",
        "repeats": args.repeats,
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
