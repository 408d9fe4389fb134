// Package bench is wpcdb's benchmark harness: synthetic workloads that look
// like learned clouds, runners that measure ingest (and, as they land,
// search recall and speed beside peers), and reports. `wpcdb bench` is a
// thin command over it. Big workloads live here, never in `go test`.
package bench
