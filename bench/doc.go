// Package bench is wpcdb's benchmark harness: synthetic workloads that look
// like learned clouds and real data (Fashion-MNIST, clouds from files),
// runners that measure ingest and search recall and speed beside peer
// pipelines run in the same process tree (hnswlib, FAISS, usearch with a
// NumPy rerank), exact ground truth with a cache, and reports (JSON,
// Markdown and a PNG plot). `wpcdb bench` is a thin command over it. Big
// workloads live here, never in `go test`.
package bench
