#!/usr/bin/env node
// Node peers for `wpcdb bench`, run by bench/peers.go on the export that
// `wpcdb bench` writes (see bench.ExportForPeers), one query at a time:
//
//   --usearch         usearch (HNSW, inner product) over wpcdb's own
//                     first-stage vectors (first_stage_items.npy /
//                     first_stage_queries.npy: φ, or the FDE for maxsim,
//                     built per score mode as wpcdb's index holds them).
//                     Two things are measured:
//                     1. "usearch-phi": the first stage alone answers top-k,
//                        sweeping expansion_search (ef); recall@k is against
//                        wpcdb's exact ground truth, like every run.
//                     2. candidates for the pipeline "usearch + exact
//                        rerank": for each depth R of config.json, the top R
//                        of each query with the time each search took, into
//                        usearch_candidates.jsonl. bench/peers.py reranks
//                        them with the same NumPy/OpenBLAS exact scorer as
//                        its hnswlib pipeline, timing each rerank, and
//                        reports "usearch-phi+numpy" with per-query latency =
//                        usearch search time + rerank time. Why not rerank
//                        here: a JavaScript kernel sum would be several times
//                        slower than BLAS and make the pipeline look worse
//                        than what a user would build (usearch is also a
//                        Python package). Why not time a rerank separately
//                        and add an average: the per-query sum keeps the
//                        latency percentiles honest. Both halves run in the
//                        same bench run on the same machine, one after the
//                        other, on one thread each; what the split leaves
//                        out is only the handing of R ids from one library
//                        to the other inside one process, which is
//                        negligible next to either half.
//   --lancedb-maxsim  LanceDB (@lancedb/lancedb 0.31.0) multivector search
//                     for maxsim workloads: items as lists of their points,
//                     queried with the query's points. LanceDB computes
//                     Σ_i max_j cos(q_i, x_j) and has no query-point weights:
//                     it normalizes query vectors, so weights cannot be
//                     folded into them, and signed weights could not be in
//                     any case (a negative weight turns a max into a min).
//                     wpcdb's maxsim weights query points (PAPER.md), so
//                     recall@k against wpcdb's truth measures LanceDB's
//                     ANN error plus that difference; each run also carries
//                     recall_vs_unweighted_maxsim, against LanceDB's own
//                     exhaustive search (its exact unweighted MaxSim).
//                     Runs: exhaustive ("lancedb-flat"), then IVF_FLAT and
//                     IVF_PQ (refine_factor 4) indexes over all points (and
//                     IVF_HNSW_SQ if asked), each sweeping limit and nprobes
//                     (see runLanceDB). Every LanceDB run
//                     is bounded in time (timeQueriesBudget: the queries
//                     that fit in WPCDB_LANCEDB_RUN_BUDGET_S seconds, 60 by
//                     default, at least 3; params.timed_queries says how
//                     many when fewer than all, recall is over those). The
//                     items are streamed from items_points.npy into the
//                     table 2,000 at a time (itemBatches), never held.
//                     WPCDB_LANCEDB_INDEXES (comma-separated methods)
//                     limits the index types; WPCDB_LANCEDB_DIR is where
//                     the table is written (default the OS temp dir);
//                     WPCDB_LANCEDB_SKIP=<why> leaves LanceDB out (listed
//                     as skipped with that reason).
//   --lancedb-ingest  LanceDB's ingest of the items wpcdb ingested
//                     (ingest_points.npy, ingest_weights.npy,
//                     ingest_lengths.npy: every item's points one after the
//                     other), as multivectors: a string id, the points as a
//                     list of fixed-size float32 vectors and the weights as
//                     a list of float32 (LanceDB has no use for them, wpcdb
//                     stores them: the same payload). The Arrow batches are
//                     built first, untimed; timed are the writes alone:
//                     "lancedb-ingest-batched" creates the table with the
//                     first --batch items and adds each next batch (each add
//                     a committed version, as each wpcdb batch is
//                     acknowledged durable), "lancedb-ingest-bulk" creates a
//                     table from all the batches in one call. Each line:
//                     {"ingest": {method, items, points, seconds,
//                     items_per_s, cpu_s, items_per_cpu_s, bytes_per_item}}.
//                     Run with every core (no thread limits), like wpcdb's
//                     ingest.
//
// Threads: usearch gets threads=1 on every call. LanceDB's compute pools
// are set to one thread by the caller's environment (LANCE_CPU_THREADS=1,
// TOKIO_WORKER_THREADS=1, RAYON_NUM_THREADS=1; not LANCE_IO_THREADS=1, with
// which 0.31.0 deadlocks building an index) and queries are issued one at
// a time; each run reports cpu_per_wall, the
// process CPU time over the wall time of its query loop (about 1 for a
// single thread), so the thread count actually used is visible.
//
// Output: one JSON object per line per run ({"method", "params",
// "threads", "recall_at_k", "qps", "p50_ms", "p99_ms", "queries"}), or
// {"skipped": name, "reason": ...}.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// readNpy reads a little-endian C-order .npy file of <f2, <f4 or <i8 into
// {shape, data}: Float32Array for floats, a plain number array for <i8.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  const body = buf.subarray(off, off + count * { '<f2': 2, '<f4': 4, '<i8': 8 }[descr]);
  // Copy into an aligned buffer: the body's offset need not be aligned.
  const aligned = new Uint8Array(body.length);
  aligned.set(body);
  switch (descr) {
    case '<f4':
      return { shape, data: new Float32Array(aligned.buffer) };
    case '<f2': {
      const h = new Uint16Array(aligned.buffer);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(h[i]);
      return { shape, data: out };
    }
    case '<i8':
      return { shape, data: Array.from(new BigInt64Array(aligned.buffer), Number) };
    default:
      throw new Error(`${file}: unsupported dtype ${descr}`);
  }
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const i = Math.ceil(p * sorted.length) - 1;
  return sorted[Math.max(0, Math.min(i, sorted.length - 1))];
}

// recall of found (per query, item indices) against truth rows.
function recall(found, truth) {
  let hit = 0;
  let total = 0;
  for (let j = 0; j < truth.length; j++) {
    const got = new Set(found[j]);
    for (const t of truth[j]) if (got.has(t)) hit++;
    total += truth[j].length;
  }
  return hit / Math.max(total, 1);
}

function summary(method, params, latMs, secs, cpuSecs, found, truth) {
  const sorted = [...latMs].sort((a, b) => a - b);
  return {
    method,
    params: { ...params, k: truth[0].length, cpu_per_wall: Math.round((cpuSecs / secs) * 100) / 100 },
    threads: 1,
    recall_at_k: recall(found, truth),
    qps: latMs.length / secs,
    p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99),
    queries: latMs.length,
    // The process's CPU time per query: on a shared machine wall q/s
    // depends on the other load, CPU time much less.
    cpu_ms_per_query: (cpuSecs * 1000) / Math.max(latMs.length, 1),
  };
}

// timeQueries runs search(j) for every query, one at a time, and returns
// per-query latencies (ms), the loop's wall and CPU seconds, and results.
async function timeQueries(nq, search) {
  const lat = [];
  const out = [];
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let j = 0; j < nq; j++) {
    const s = process.hrtime.bigint();
    const v = search(j); // usearch answers synchronously: no await, no microtask in its latency
    out.push(v instanceof Promise ? await v : v);
    lat.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { lat, secs, cpuSecs: (cpu.user + cpu.system) / 1e6, out };
}

function truthRows(dir) {
  const t = readNpy(path.join(dir, 'truth.npy'));
  const [q, k] = t.shape;
  const rows = [];
  for (let j = 0; j < q; j++) rows.push(t.data.slice(j * k, (j + 1) * k));
  return rows;
}

async function runUSearch(dir, cfg, truth) {
  let usearch;
  try {
    usearch = require('usearch'); // the CommonJS build: its ES module build cannot find its native addon under node 20
  } catch (e) {
    emit({ skipped: 'usearch', reason: `npm module usearch does not load: ${e.message}` });
    return;
  }
  const items = readNpy(path.join(dir, 'first_stage_items.npy'));
  const queries = readNpy(path.join(dir, 'first_stage_queries.npy'));
  const [n, dim] = items.shape;
  const nq = queries.shape[0];
  const k = truth[0].length;
  const qvec = (j) => queries.data.subarray(j * dim, (j + 1) * dim);
  // hnswlib's settings in bench/peers.py: M = 16, ef_construction = 200.
  const M = 16;
  const efAdd = 200;
  // wpcdb's metric for these vectors: inner product, or L2 for the mmd score.
  const metric = cfg.first_stage_metric === 'l2' ? 'l2sq' : 'ip';
  const make = (ef) => new usearch.Index({ metric, dimensions: dim, connectivity: M, expansion_add: efAdd, expansion_search: ef, quantization: 'f32' });
  const t0 = process.hrtime.bigint();
  const built = make(64);
  built.add(BigUint64Array.from({ length: n }, (_, i) => BigInt(i)), items.data, 1);
  const buildS = Number(process.hrtime.bigint() - t0) / 1e9;
  // expansion_search is fixed when an index is made: save the graph once and
  // load it into an index made with each ef (load keeps the new ef).
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wpcdb-usearch-')), 'index.usearch');
  built.save(file);
  const withEf = (ef) => {
    const idx = make(ef);
    idx.load(file);
    return idx;
  };
  const base = { M, ef_construction: efAdd, build_s: Math.round(buildS * 100) / 100, dim };
  // 1. The first stage alone answers top k.
  for (const ef of [16, 32, 64, 128, 256]) {
    const idx = withEf(ef);
    const r = await timeQueries(nq, (j) => Array.from(idx.search(qvec(j), k, 1).keys, Number));
    emit(summary('usearch-phi', { ...base, ef }, r.lat, r.secs, r.cpuSecs, r.out, truth));
  }
  // 2. Candidates of depth R for the exact rerank in bench/peers.py, with
  // ef = max(R, 64) as its hnswlib pipeline uses.
  const lines = [];
  for (const depth of cfg.candidates) {
    const ef = Math.max(depth, 64);
    const idx = withEf(ef);
    const r = await timeQueries(nq, (j) => Array.from(idx.search(qvec(j), Math.min(depth, n), 1).keys, Number));
    lines.push(JSON.stringify({ candidates: depth, params: { ...base, ef }, search_ms: r.lat, cpu_per_wall: r.cpuSecs / r.secs, ids: r.out }));
  }
  fs.writeFileSync(path.join(dir, 'usearch_candidates.jsonl'), lines.join('\n') + '\n');
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
}

// npyHeader reads the header of a little-endian C-order .npy file:
// {descr, shape, offset of the body}.
function npyHeader(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(12);
    fs.readSync(fd, head, 0, 12, 0);
    if (head.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
    const hlen = head[6] === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
    const hstart = head[6] === 1 ? 10 : 12;
    const hb = Buffer.alloc(hlen);
    fs.readSync(fd, hb, 0, hlen, hstart);
    const header = hb.toString('latin1');
    if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
    const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
    const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
    return { descr, shape, offset: hstart + hlen };
  } finally {
    fs.closeSync(fd);
  }
}

// itemBatches yields the items of items_points.npy (N, M, d), padded to M
// points, as Arrow tables of `batch` items ({id: int32, vec: list of
// float32 vectors of their own length}), reading the file a batch at a
// time: at colbert 100k the padded float16 export is 7.7 GB and its points
// 9.2 GB as float32, so neither is ever held whole (reading the file at
// once, as readNpy does, would need both and more).
function* itemBatches(arrow, dir, lens, batch) {
  const file = path.join(dir, 'items_points.npy');
  const { descr, shape, offset } = npyHeader(file);
  const [n, m, d] = shape;
  const size = { '<f2': 2, '<f4': 4 }[descr];
  if (!size) throw new Error(`${file}: unsupported dtype ${descr}`);
  const vecType = new arrow.FixedSizeList(d, new arrow.Field('item', new arrow.Float32()));
  const pointsType = new arrow.List(new arrow.Field('item', vecType));
  const schema = new arrow.Schema([new arrow.Field('id', new arrow.Int32()), new arrow.Field('vec', pointsType)]);
  const rowBytes = m * d * size;
  const fd = fs.openSync(file, 'r');
  try {
    for (let lo = 0; lo < n; lo += batch) {
      const hi = Math.min(n, lo + batch);
      const raw = Buffer.alloc((hi - lo) * rowBytes);
      let got = 0;
      while (got < raw.length) {
        const r = fs.readSync(fd, raw, got, raw.length - got, offset + lo * rowBytes + got);
        if (r === 0) throw new Error(`${file}: short read at item ${lo}`);
        got += r;
      }
      const offsets = new Int32Array(hi - lo + 1);
      for (let i = lo; i < hi; i++) offsets[i - lo + 1] = offsets[i - lo] + Number(lens[i]);
      const floats = new Float32Array(offsets[hi - lo] * d);
      for (let i = lo; i < hi; i++) {
        const cnt = Number(lens[i]) * d;
        const dst = offsets[i - lo] * d;
        const src = (i - lo) * rowBytes;
        if (size === 4) {
          floats.set(new Float32Array(raw.buffer.slice(raw.byteOffset + src, raw.byteOffset + src + cnt * 4)), dst);
        } else {
          for (let x = 0; x < cnt; x++) floats[dst + x] = halfToFloat(raw.readUInt16LE(src + 2 * x));
        }
      }
      const fl = arrow.makeData({ type: new arrow.Float32(), length: floats.length, nullCount: 0, data: floats });
      const vectors = arrow.makeData({ type: vecType, length: offsets[hi - lo], nullCount: 0, child: fl });
      const vec = arrow.makeData({ type: pointsType, length: hi - lo, nullCount: 0, valueOffsets: offsets, child: vectors });
      const ids = arrow.makeData({ type: new arrow.Int32(), length: hi - lo, nullCount: 0, data: Int32Array.from({ length: hi - lo }, (_, i) => lo + i) });
      const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: hi - lo, nullCount: 0, children: [ids, vec] });
      yield new arrow.Table(schema, new arrow.RecordBatch(schema, struct));
    }
  } finally {
    fs.closeSync(fd);
  }
}

// LanceDB runs are bounded in time, not in queries: its exhaustive
// multivector search took 3.3-4.3 minutes a query over colbert 20k (3.6M
// vectors, one thread, a loaded machine), so timing all 50 queries would
// take three hours. Each run times queries in order (the same first queries
// for every run) until it has spent lanceBudgetS seconds, and at least
// lanceMinQueries; its recall is over the queries it timed, and its params
// carry timed_queries (as wpcdb's own exact row does) when that is fewer
// than all. --peer-timeout stays the safety net.
const lanceBudgetS = Number(process.env.WPCDB_LANCEDB_RUN_BUDGET_S || 60);
const lanceMinQueries = 3;

async function timeQueriesBudget(nq, search) {
  const lat = [];
  const out = [];
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let secs = 0;
  for (let j = 0; j < nq; j++) {
    const s = process.hrtime.bigint();
    out.push(await search(j));
    lat.push(Number(process.hrtime.bigint() - s) / 1e6);
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (secs >= lanceBudgetS && j + 1 >= lanceMinQueries) break;
  }
  const cpu = process.cpuUsage(cpu0);
  return { lat, secs, cpuSecs: (cpu.user + cpu.system) / 1e6, out };
}

async function runLanceDB(dir, truth) {
  let lancedb;
  let arrow;
  try {
    lancedb = require('@lancedb/lancedb');
    arrow = require('apache-arrow');
  } catch (e) {
    emit({ skipped: 'lancedb-maxsim', reason: `npm module does not load: ${e.message}` });
    return;
  }
  const lens = readNpy(path.join(dir, 'items_lengths.npy')).data;
  const qp = readNpy(path.join(dir, 'queries_points.npy'));
  const n = lens.length;
  const [nq, qn, d] = qp.shape;
  const k = truth[0].length;
  const total = lens.reduce((a, b) => a + Number(b), 0);
  // Queries are padded to qn points; queries_lengths.npy has their lengths.
  const qlPath = path.join(dir, 'queries_lengths.npy');
  const qlens = fs.existsSync(qlPath) ? readNpy(qlPath).data : null;
  const queries = [];
  for (let j = 0; j < nq; j++) {
    const q = [];
    const len = qlens ? Number(qlens[j]) : qn;
    for (let p = 0; p < len; p++) q.push(qp.data.subarray((j * qn + p) * d, (j * qn + p + 1) * d));
    queries.push(q);
  }
  const lanceStart = Number(process.hrtime.bigint());
  const dbDir = fs.mkdtempSync(path.join(process.env.WPCDB_LANCEDB_DIR || os.tmpdir(), 'wpcdb-lancedb-'));
  try {
    const db = await lancedb.connect(dbDir);
    // Loaded 2,000 items at a time (the batches are built from the file
    // inside the timed load: that is reading the data, as any load does).
    let t0 = process.hrtime.bigint();
    let tbl = null;
    for (const b of itemBatches(arrow, dir, lens, 2000)) {
      if (tbl === null) tbl = await db.createTable('items', b);
      else await tbl.add(b);
    }
    const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
    // search returns the top k ids of a query fetching `limit` rows (k by
    // default).
    const search = (q, tune, limit = k) => {
      let query = tbl.query().nearestTo(q[0]);
      for (let p = 1; p < q.length; p++) query = query.addQueryVector(q[p]);
      query = tune(query.distanceType('cosine')).limit(limit).select(['id']);
      return query.toArray().then((res) => res.slice(0, k).map((r) => r.id));
    };
    const base = { items: n, points: total, load_s: Math.round(loadS * 100) / 100 };
    // run's params gain timed_queries when it timed fewer than all queries;
    // recall is over the ones it timed.
    const report = (method, params, r) => {
      const tr = truth.slice(0, r.out.length);
      const p = { ...params };
      if (r.out.length < nq) p.timed_queries = r.out.length;
      return summary(method, p, r.lat, r.secs, r.cpuSecs, r.out, tr);
    };
    // Exhaustive: LanceDB's exact (unweighted) MaxSim, the reference for
    // recall_vs_unweighted_maxsim (over the queries both timed).
    // WPCDB_LANCEDB_NO_FLAT=1 leaves it out (a second sweep over the same
    // export): the index runs then carry no recall_vs_unweighted_maxsim.
    let unweighted = null;
    const withUnweighted = (run, found) => {
      if (unweighted === null) return run;
      const c = Math.min(found.length, unweighted.length);
      run.params.recall_vs_unweighted_maxsim = recall(found.slice(0, c), unweighted.slice(0, c));
      return run;
    };
    if (!process.env.WPCDB_LANCEDB_NO_FLAT) {
      const flat = await timeQueriesBudget(nq, (j) => search(queries[j], (q) => q));
      unweighted = flat.out;
      emit(withUnweighted(report('lancedb-flat', base, flat), flat.out));
    }
    // Indexes over all points. LanceDB's indexed multivector search finds
    // each query vector's nearest rows, `limit` of them, and scores the
    // union; with limit = k its recall against its own exhaustive answer
    // stayed near 0.4-0.6 at every nprobes on a 400-document colbert set
    // (measured here), and with limit = 40k it reached 1. So each index is
    // swept over limit (10k, 40k and k rows fetched, the top k kept: the depth
    // knob a user would turn, as wpcdb's candidates) and nprobes (doubling),
    // until it finds LanceDB's exhaustive answer on every timed query,
    // probes every partition or gains nothing from doubling nprobes
    // (WPCDB_LANCEDB_LIMITS: other limits, comma-separated). Partitions: √items, LanceDB's default.
    // IVF_HNSW_SQ runs only when WPCDB_LANCEDB_INDEXES names it: its build
    // took 35 s for 72k vectors on one thread here, so about half an hour
    // at colbert 20k (3.6M). A type LanceDB refuses on a multivector column
    // is listed as skipped with its error. The whole LanceDB sweep stops at
    // WPCDB_LANCEDB_TOTAL_S seconds (default 2,400), listing what it did
    // not run.
    const partitions = Math.max(2, Math.round(Math.sqrt(n)));
    const kinds = [
      ['lancedb-ivf-flat', () => lancedb.Index.ivfFlat({ distanceType: 'cosine', numPartitions: partitions }), {}],
      ['lancedb-ivf-pq', () => lancedb.Index.ivfPq({ distanceType: 'cosine', numPartitions: partitions }), { refine_factor: 4 }],
      ['lancedb-ivf-hnsw-sq', () => lancedb.Index.hnswSq({ distanceType: 'cosine', numPartitions: partitions }), {}],
    ];
    const only = (process.env.WPCDB_LANCEDB_INDEXES || 'lancedb-ivf-flat,lancedb-ivf-pq').split(',');
    const deadline = lanceStart + Number(process.env.WPCDB_LANCEDB_TOTAL_S || 2400) * 1e9;
    const late = () => process.hrtime.bigint() > BigInt(Math.round(deadline));
    for (const [method, config, extra] of kinds) {
      if (!only.includes(method)) {
        const why = method === 'lancedb-ivf-hnsw-sq' ? ' (IVF_HNSW_SQ: its build of 72k vectors took 35 s on one thread here, so about half an hour is expected per 3.6M)' : '';
        emit({ skipped: method, reason: `not in WPCDB_LANCEDB_INDEXES${why}` });
        continue;
      }
      if (late()) {
        emit({ skipped: method, reason: `the LanceDB sweep passed WPCDB_LANCEDB_TOTAL_S before this index` });
        continue;
      }
      let buildS;
      try {
        t0 = process.hrtime.bigint();
        await tbl.createIndex('vec', { config: config(), replace: true });
        buildS = Number(process.hrtime.bigint() - t0) / 1e9;
      } catch (e) {
        emit({ skipped: method, reason: `LanceDB 0.31 createIndex on the multivector column failed: ${String(e.message || e).split('\n')[0]}` });
        continue;
      }
      const limits = process.env.WPCDB_LANCEDB_LIMITS ? process.env.WPCDB_LANCEDB_LIMITS.split(',').map(Number) : [10 * k, 40 * k, k];
      sweep: for (const limit of limits) {
        let prev = -1;
        for (let nprobes = 1; ; nprobes *= 2) {
          nprobes = Math.min(nprobes, partitions);
          if (late()) {
            emit({ skipped: `${method} limit=${limit} nprobes>=${nprobes}`, reason: 'the LanceDB sweep passed WPCDB_LANCEDB_TOTAL_S' });
            break sweep;
          }
          const tune = (q) => {
            let t = q.nprobes(nprobes);
            if (extra.refine_factor) t = t.refineFactor(extra.refine_factor);
            return t;
          };
          const r = await timeQueriesBudget(nq, (j) => search(queries[j], tune, limit));
          const run = withUnweighted(report(method, { ...base, partitions, nprobes, limit, ...extra, build_s: Math.round(buildS * 100) / 100 }, r), r.out);
          emit(run);
          // Stop at LanceDB's exhaustive answer, at the last partition, or
          // when doubling nprobes gained nothing: at colbert 20k, limit
          // 100, recall stayed at 0.70 from nprobes 2 to 128 while a query
          // grew from 2 s to 200 s, and those runs used up the sweep.
          const got = run.params.recall_vs_unweighted_maxsim ?? run.recall_at_k;
          if (nprobes >= partitions || got >= 1 || got <= prev) break;
          prev = got;
        }
      }
    }
  } finally {
    fs.rmSync(dbDir, { recursive: true, force: true });
  }
}

// ingestBatches builds the Arrow batches of items [0, n) in batches of
// `batch` items.
function ingestBatches(arrow, dir, batch) {
  const pts = readNpy(path.join(dir, 'ingest_points.npy'));
  const ws = readNpy(path.join(dir, 'ingest_weights.npy')).data;
  const lens = readNpy(path.join(dir, 'ingest_lengths.npy')).data;
  const [total, d] = pts.shape;
  const n = lens.length;
  const vecType = new arrow.FixedSizeList(d, new arrow.Field('item', new arrow.Float32()));
  const pointsType = new arrow.List(new arrow.Field('item', vecType));
  const weightsType = new arrow.List(new arrow.Field('item', new arrow.Float32()));
  const schema = new arrow.Schema([
    new arrow.Field('id', new arrow.Utf8()),
    new arrow.Field('vec', pointsType),
    new arrow.Field('weights', weightsType),
  ]);
  const start = new Array(n + 1);
  start[0] = 0;
  for (let i = 0; i < n; i++) start[i + 1] = start[i] + lens[i];
  if (start[n] !== total) throw new Error(`ingest_lengths.npy sums to ${start[n]} points, ingest_points.npy has ${total}`);
  const tables = [];
  for (let lo = 0; lo < n; lo += batch) {
    const hi = Math.min(n, lo + batch);
    const p0 = start[lo];
    const p1 = start[hi];
    const offsets = new Int32Array(hi - lo + 1);
    for (let i = lo; i <= hi; i++) offsets[i - lo] = start[i] - p0;
    const floats = arrow.makeData({ type: new arrow.Float32(), length: (p1 - p0) * d, nullCount: 0, data: pts.data.subarray(p0 * d, p1 * d) });
    const vectors = arrow.makeData({ type: vecType, length: p1 - p0, nullCount: 0, child: floats });
    const vec = arrow.makeData({ type: pointsType, length: hi - lo, nullCount: 0, valueOffsets: offsets, child: vectors });
    const wdata = arrow.makeData({ type: new arrow.Float32(), length: p1 - p0, nullCount: 0, data: ws.subarray(p0, p1) });
    const weights = arrow.makeData({ type: weightsType, length: hi - lo, nullCount: 0, valueOffsets: offsets, child: wdata });
    const ids = arrow.vectorFromArray(Array.from({ length: hi - lo }, (_, i) => `item-${lo + i}`), new arrow.Utf8());
    const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: hi - lo, nullCount: 0, children: [ids.data[0], vec, weights] });
    tables.push(new arrow.Table(schema, new arrow.RecordBatch(schema, struct)));
  }
  return { tables, n, total };
}

function dirBytes(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return n;
}

async function runLanceDBIngest(dir, batch) {
  let lancedb;
  let arrow;
  try {
    lancedb = require('@lancedb/lancedb');
    arrow = require('apache-arrow');
  } catch (e) {
    emit({ skipped: 'lancedb-ingest', reason: `npm module does not load: ${e.message}` });
    return;
  }
  const { tables, n, total } = ingestBatches(arrow, dir, batch);
  const timed = async (method, write) => {
    const dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wpcdb-lancedb-ingest-'));
    try {
      const db = await lancedb.connect(dbDir);
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await write(db);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      const cpuS = (cpu.user + cpu.system) / 1e6;
      emit({
        ingest: {
          method, params: { batch, batches: tables.length }, items: n, points: total, seconds: secs, items_per_s: n / secs,
          cpu_s: cpuS, items_per_cpu_s: n / cpuS, bytes_per_item: dirBytes(dbDir) / n,
        },
      });
    } finally {
      fs.rmSync(dbDir, { recursive: true, force: true });
    }
  };
  await timed('lancedb-ingest-batched', async (db) => {
    const tbl = await db.createTable('items', tables[0]);
    for (let b = 1; b < tables.length; b++) await tbl.add(tables[b]);
  });
  await timed('lancedb-ingest-bulk', async (db) => {
    const all = new arrow.Table(tables[0].schema, tables.flatMap((t) => t.batches));
    await db.createTable('items', all);
  });
}

async function main() {
  const [dir, ...flags] = process.argv.slice(2);
  if (!dir) throw new Error('usage: node peers.js EXPORT_DIR [--usearch] [--lancedb-maxsim] | --lancedb-ingest [--batch=N]');
  if (flags.includes('--lancedb-ingest')) {
    const b = flags.find((f) => f.startsWith('--batch='));
    await runLanceDBIngest(dir, b ? Number(b.slice('--batch='.length)) : 1000);
    return;
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const truth = truthRows(dir);
  if (flags.includes('--usearch')) await runUSearch(dir, cfg, truth);
  if (flags.includes('--lancedb-maxsim')) {
    if (process.env.WPCDB_LANCEDB_SKIP) emit({ skipped: 'lancedb-maxsim', reason: `WPCDB_LANCEDB_SKIP is set (${process.env.WPCDB_LANCEDB_SKIP})` });
    else await runLanceDB(dir, truth);
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
