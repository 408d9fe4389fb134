package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/cluster"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

type serveFlags struct {
	listen          string
	metricsListen   string
	tlsCert, tlsKey string
	maxRecvMB       int
	recvBudgetMB    int
	recvTimeout     time.Duration
	memoryLimitMB   int
	snapshotDir     string
	importDir       string
	shutdownTimeout time.Duration
	logLevel        string
	http            bool
	cluster         string // etcd endpoints: cluster mode
	nodeID          string
	advertise       string
	shardTimeout    time.Duration
	replicas        int
	compactEntries  int
	keepEntries     int
}

func (a *app) serveCommand() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--data DIR] [--listen 127.0.0.1:7070] [--metrics-listen 127.0.0.1:9464] [--token T | --token-file F] [--tls-cert F --tls-key F] [--max-recv-mb N]",
		Short: "Serve the database over gRPC (wpcdb.v1.WPCDBService, health, reflection) with Prometheus metrics",
		Long: `serve opens the database in --data and serves it over gRPC on --listen: the
service wpcdb.v1.WPCDBService (see proto/wpcdb/v1/wpcdb.proto), the standard health
service and reflection (so grpcurl works), and on the same port (unless
--http=false) the same calls as HTTP/JSON: e.g. POST /v1/collections/NAME/search
with the request message in protojson as the body. With --token or --token-file every
call but health and reflection needs "authorization: Bearer <token>". With
--tls-cert and --tls-key it serves TLS. Metrics are served on
http://--metrics-listen/metrics (empty or port 0: off). SIGINT or SIGTERM stops
the server gracefully: in-flight requests finish within --shutdown-timeout,
then they are cancelled. Every other wpcdb command given --addr is its client.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serve(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7070", "HOST:PORT of the gRPC listener")
	fl.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:9464", "HOST:PORT of the Prometheus /metrics listener (empty or port 0: off)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve TLS with")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fl.IntVar(&f.maxRecvMB, "max-recv-mb", server.DefaultMaxRecvBytes>>20, "largest message the server accepts, in MiB (an ingest batch is one message)")
	fl.IntVar(&f.recvBudgetMB, "recv-budget-mb", 0, "request messages being received and decoded at once, in MiB: each holds --max-recv-mb of it until decoded and admitted, others wait (0: 2 × --max-recv-mb)")
	fl.DurationVar(&f.recvTimeout, "recv-timeout", server.DefaultRecvTimeout, "how long a request message (or an HTTP body, but an Upsert stream's) may take to arrive once its place in --recv-budget-mb is taken (then DEADLINE_EXCEEDED); 0: no limit")
	fl.IntVar(&f.memoryLimitMB, "memory-limit-mb", 0, "soft memory limit of the Go runtime, in MiB (the garbage collector works harder near it); 0: GOMEMLIMIT if set, else 90% of the cgroup's memory limit if any; -1: none")
	fl.StringVar(&f.snapshotDir, "snapshot-dir", "", "directory Snapshot requests write under; a request names a snapshot in it (default <data>/snapshots)")
	fl.StringVar(&f.importDir, "import-dir", "", "directory Import requests read NumPy files from (paths relative to it, never outside it); empty: imports are disabled")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful stop waits for in-flight requests")
	fl.BoolVar(&f.http, "http", true, "also serve HTTP/JSON (REST routes under /v1/, protojson bodies) on --listen")
	fl.StringVar(&f.cluster, "cluster", "", "cluster mode: etcd endpoints, comma-separated (http://127.0.0.1:2379); the node registers and routes sharded collections")
	fl.StringVar(&f.nodeID, "node-id", "", "cluster mode: this node's ID (letters, digits, '_', '-', '.')")
	fl.StringVar(&f.advertise, "advertise", "", "cluster mode: HOST:PORT other nodes reach this one at (default: the address --listen bound)")
	fl.IntVar(&f.replicas, "replicas", 1, "cluster mode: replicas of each shard of a collection created through the API (CreateCollection, one shard per live node); collection create --replicas sets its own")
	fl.IntVar(&f.compactEntries, "raft-compact-entries", 0, "cluster mode: compact a shard's Raft log once it holds more entries than this (0: 10000; it is also compacted past 256 MiB); a replica further behind catches up from a snapshot")
	fl.IntVar(&f.keepEntries, "raft-keep-entries", 0, "cluster mode: entries a compaction keeps before the applied index, for followers slightly behind (0: 1000, negative: none)")
	fl.DurationVar(&f.shardTimeout, "shard-timeout", 0, "cluster mode: how long each shard's part of a call may take (0: the call's own deadline only); a shard past it fails the call as a refused partial result")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug (every request), info (failed requests), warn or error")
	return cmd
}

func (a *app) serve(ctx context.Context, f serveFlags) error {
	if a.g.addr != "" {
		return usageError{errors.New("serve: --addr is for clients; the server listens on --listen")}
	}
	token, err := a.flagToken("serve")
	if err != nil {
		return err
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usageError{errors.New("serve: --tls-cert and --tls-key go together")}
	}
	if f.maxRecvMB <= 0 || f.maxRecvMB > 2047 {
		return usageError{fmt.Errorf("serve: --max-recv-mb must be between 1 and 2047, got %d", f.maxRecvMB)}
	}
	if f.recvBudgetMB != 0 && (f.recvBudgetMB < f.maxRecvMB || f.recvBudgetMB > 1<<20) {
		return usageError{fmt.Errorf("serve: --recv-budget-mb must be 0 or between --max-recv-mb (%d) and 1048576, got %d", f.maxRecvMB, f.recvBudgetMB)}
	}
	if f.recvTimeout < 0 {
		return usageError{fmt.Errorf("serve: --recv-timeout must not be negative, got %v", f.recvTimeout)}
	}
	if f.memoryLimitMB < -1 {
		return usageError{fmt.Errorf("serve: --memory-limit-mb must be -1, 0 or positive, got %d", f.memoryLimitMB)}
	}
	if (f.cluster == "") != (f.nodeID == "") || (f.advertise != "" && f.cluster == "") {
		return usageError{errors.New("serve: --cluster and --node-id go together (with --advertise when other nodes reach this one at another address)")}
	}
	if f.replicas < 1 || f.replicas > cluster.MaxReplicas {
		return usageError{fmt.Errorf("serve: --replicas must be between 1 and %d, got %d", cluster.MaxReplicas, f.replicas)}
	}
	if f.compactEntries < 0 {
		return usageError{fmt.Errorf("serve: --raft-compact-entries must not be negative, got %d", f.compactEntries)}
	}
	if f.shardTimeout < 0 {
		return usageError{fmt.Errorf("serve: --shard-timeout must not be negative, got %v", f.shardTimeout)}
	}
	if f.cluster != "" && f.tlsCert != "" {
		return usageError{errors.New("serve: --cluster with TLS is not supported yet: nodes forward to each other in plaintext")}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return usageError{fmt.Errorf("serve: --log-level: %v", err)}
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	a.log = log // the database's messages too
	if f.snapshotDir == "" {
		f.snapshotDir = filepath.Join(a.g.data, wpcdb.SnapshotsDir)
	}
	if limit, from := memoryLimit(f.memoryLimitMB); limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Info("memory limit", "mib", limit>>20, "from", from)
	}
	opts := &server.Options{Token: token, MaxRecvBytes: f.maxRecvMB << 20, RecvBudgetBytes: int64(f.recvBudgetMB) << 20, RecvTimeout: cmp.Or(f.recvTimeout, -1), SnapshotRoot: f.snapshotDir, ImportRoot: f.importDir, Logger: log, HTTP: f.http}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("serve: TLS: %w", err)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	for _, w := range securityWarnings(token != "", opts.TLS != nil, f.listen) {
		log.Warn(w, "listen", f.listen)
	}

	db, err := a.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	v, rev := buildVersion()
	opts.Version, opts.Revision = v, rev
	log.Info("wpcdb", "version", v, "revision", rev)
	opts.Registerer = reg
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	var reps *cluster.Replicas
	if f.cluster != "" {
		node, err := a.joinCluster(ctx, f, token, lis.Addr().String(), log)
		if err != nil {
			lis.Close()
			return err
		}
		defer node.Close() // after the server stops: leave the cluster
		// The shards' Raft logs: a Pebble database of their own, in the
		// data folder; snapshots beside it (raft-snapshots).
		reps, err = cluster.OpenReplicas(node, filepath.Join(a.g.data, cluster.RaftDir),
			cluster.ReplicaOptions{DB: db, Logger: log, CompactEntries: f.compactEntries, KeepEntries: f.keepEntries})
		if err != nil {
			lis.Close()
			return err
		}
		defer reps.Close() // after the server stops, before the database closes
		var router *cluster.Router
		opts.Wrap = func(local pb.WPCDBServiceServer) pb.WPCDBServiceServer {
			reps.SetLocal(local)
			router = cluster.NewRouter(node.Client, local, reps)
			return router
		}
		// Import into a sharded collection: this node reads the files and
		// the router writes them to the shards.
		opts.ImportTo = func(ctx context.Context, name string) (ingest.Importer, error) { return router.Importer(ctx, name) }
		opts.Register = reps.Register
	}
	srv, err := server.New(db, opts)
	if err != nil {
		lis.Close()
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(lis) }()
	if reps != nil {
		reps.Start()
	}

	var metricsSrv *http.Server
	if metricsOn(f.metricsListen) {
		mlis, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			srv.Stop(ctx)
			return fmt.Errorf("serve: metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		log.Info("serving metrics", "url", "http://"+mlis.Addr().String()+"/metrics")
		go func() {
			if err := metricsSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}

	// Save the first-stage indexes now and then, so that a crash replays
	// at most this interval's writes on the next start.
	saveTick := time.NewTicker(10 * time.Minute)
	defer saveTick.Stop()
	var serveErr error
wait:
	for {
		select {
		case <-saveTick.C:
			if err := db.SaveIndexes(); err != nil {
				log.Warn("saving first-stage indexes", "err", err)
			}
		case <-ctx.Done():
			log.Info("stopping: finishing in-flight requests", "timeout", f.shutdownTimeout)
			break wait
		case serveErr = <-errc:
			log.Error("server failed; stopping", "err", serveErr)
			break wait
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		log.Warn("in-flight requests cancelled at the shutdown timeout")
	}
	if metricsSrv != nil {
		metricsSrv.Shutdown(sctx)
	}
	log.Info("stopped")
	return serveErr
}

// joinCluster registers the node in the cluster of f.cluster's etcd
// endpoints, at f.advertise or else the bound address.
func (a *app) joinCluster(ctx context.Context, f serveFlags, token, bound string, log *slog.Logger) (*cluster.Node, error) {
	eps, err := clusterEndpoints("serve", f.cluster)
	if err != nil {
		return nil, err
	}
	addr := f.advertise
	if addr == "" {
		addr = bound
	}
	node, err := cluster.Join(ctx, cluster.Options{Endpoints: eps, Token: token, Logger: log, ShardTimeout: f.shardTimeout, Replicas: f.replicas}, f.nodeID, addr, 0)
	if err != nil {
		return nil, err
	}
	log.Info("joined the cluster", "node", f.nodeID, "advertise", addr, "etcd", f.cluster)
	return node, nil
}

// metricsOn reports whether a metrics address is enabled: not empty and
// not port 0.
func metricsOn(addr string) bool {
	if addr == "" {
		return false
	}
	_, port, err := net.SplitHostPort(addr)
	return err != nil || port != "0"
}

// memoryLimit is the soft memory limit serve sets, and where it comes
// from: --memory-limit-mb, else (flag 0) 90% of the cgroup's limit unless
// GOMEMLIMIT is set (the runtime applies it itself). 0: none. Measured
// with scripts/recvmem, 8 concurrent 60 MB upserts: peak RSS 1.07 GB
// without a limit, 571 MB with a limit of 512 MiB, where most of the rest
// is garbage the collector has not reclaimed yet.
func memoryLimit(flagMB int) (int64, string) {
	switch {
	case flagMB > 0:
		return int64(flagMB) << 20, "--memory-limit-mb"
	case flagMB < 0 || os.Getenv("GOMEMLIMIT") != "":
		return 0, ""
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or cgroup v1's "no limit"
			return 0, ""
		}
		return n / 10 * 9, f
	}
	return 0, ""
}

// securityWarnings are the warnings serve logs for how it listens: no
// token, or a token crossing the network in clear text.
func securityWarnings(token, tls bool, listen string) []string {
	if isLoopback(listen) {
		return nil
	}
	switch {
	case !token:
		return []string{"serving without a token on a non-loopback address: anyone who can connect can read and write"}
	case !tls:
		return []string{"serving a bearer token without TLS on a non-loopback address: the token crosses the network in clear text; add --tls-cert and --tls-key"}
	}
	return nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
