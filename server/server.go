package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// DefaultMaxRecvBytes is the default bound on one received message: room
// for the CLI's largest ingest batch (8 Mi floats, 32 MiB) with its IDs and
// attributes.
const DefaultMaxRecvBytes = 64 << 20

// DefaultMaxInflightFloats is the default in-flight budget: 32 Mi floats
// (128 MiB of coordinates), two of the largest default messages.
const DefaultMaxInflightFloats = 32 << 20

// DefaultRecvBudgetMessages is how many messages of the largest size the
// default receive budget holds: at 64 MiB, 128 MiB, as the default
// in-flight budget holds two of the largest default messages.
const DefaultRecvBudgetMessages = 2

// DefaultRecvTimeout is the default receive timeout: 64 MiB at about
// 0.5 MiB/s.
const DefaultRecvTimeout = 2 * time.Minute

// ServiceName is the full name of the wpcdb service, as the health service
// reports it.
const ServiceName = "wpcdb.v1.WPCDBService"

// Options configure a Server. The zero value is valid: plaintext, no auth,
// 64 MiB messages, no logs, no metrics.
type Options struct {
	// Token is the bearer token every method but health and reflection
	// requires ("authorization: Bearer <token>"); empty: no auth.
	Token string
	// TLS serves TLS with this config; nil serves plaintext.
	TLS *tls.Config
	// MaxRecvBytes bounds one received message (a larger one is
	// ResourceExhausted); 0 means DefaultMaxRecvBytes.
	MaxRecvBytes int
	// MaxInflightFloats bounds the point coordinates and weights of the
	// requests being served at once (upsert batches, queries): a request
	// waits for room (until its deadline) and one larger than the whole
	// budget is ResourceExhausted, so concurrent large requests queue
	// instead of exhausting memory. 0 means DefaultMaxInflightFloats.
	MaxInflightFloats int64
	// RecvBudgetBytes bounds the request messages being received and
	// decoded at once: each reserves MaxRecvBytes of it until it is
	// decoded and its handler has taken its share of the in-flight
	// budget (a small message gives it back once decoded), and waits
	// for room until its deadline (recvgate.go). 0 means
	// DefaultRecvBudgetMessages × MaxRecvBytes; less than MaxRecvBytes
	// means MaxRecvBytes.
	RecvBudgetBytes int64
	// RecvTimeout bounds the time a message (or an HTTP body, but a gRPC
	// Upsert stream's) may take to arrive once its place in the receive
	// budget is taken (DEADLINE_EXCEEDED, or the body's read fails,
	// after it). 0 means DefaultRecvTimeout; negative: none.
	RecvTimeout time.Duration
	// SnapshotRoot is the directory Snapshot writes under (created when
	// needed): a request names a new snapshot inside it. Empty: Snapshot is
	// disabled (FailedPrecondition).
	SnapshotRoot string
	// ImportRoot is the directory Import reads files from: a request's
	// paths are relative to it and cannot leave it. Empty: Import is
	// disabled (FailedPrecondition).
	ImportRoot string
	// Logger receives one record per request (debug for successes, info for
	// client errors, error for server errors) and panics; nil discards.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil: no metrics.
	Registerer prometheus.Registerer
	// Version and Revision name the build: in the metric wpcdb_build_info,
	// in every gRPC response's header "wpcdb-version" and in GET /v1/health.
	Version, Revision string
	// HTTP also serves the service as HTTP/JSON (REST routes with protojson
	// bodies, see http.go), Connect and gRPC-Web on the same listener.
	HTTP bool
	// Wrap, when set, wraps the service before it is registered: cluster
	// mode (package cluster) routes its sharded collections and passes
	// every other call to the local service it is given.
	Wrap func(local pb.WPCDBServiceServer) pb.WPCDBServiceServer
	// ImportTo, when set, gives where an Import into a collection this
	// server does not hold writes (cluster mode: a sharded collection,
	// cluster.Router.Importer), or an error wrapping
	// wpcdb.ErrCollectionNotFound when there is no such collection.
	ImportTo func(ctx context.Context, name string) (ingest.Importer, error)
	// Register, when set, registers more services on the gRPC server
	// (after Wrap): cluster mode's ReplicationService. They pass through
	// the same interceptors (bearer token, logs, metrics) as WPCDBService.
	Register func(s grpc.ServiceRegistrar)
}

// Server is a gRPC server over a DB. Safe for concurrent use.
type Server struct {
	grpc    *grpc.Server
	health  *health.Server
	log     *slog.Logger
	version string
	recv    *recvGate // the service's receive gate

	httpSrv  *http.Server // with Options.HTTP
	mu       sync.Mutex
	mixedLis []net.Listener // plaintext listeners split by serveMixed
	stopped  bool           // Stop was called: serveMixed serves no more
}

// New builds a server over db; Serve starts it. db stays the caller's.
func New(db *wpcdb.DB, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxRecvBytes <= 0 {
		o.MaxRecvBytes = DefaultMaxRecvBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxInflightFloats <= 0 {
		o.MaxInflightFloats = DefaultMaxInflightFloats
	}
	if o.RecvTimeout == 0 {
		o.RecvTimeout = DefaultRecvTimeout
	}
	if o.RecvBudgetBytes <= 0 {
		o.RecvBudgetBytes = DefaultRecvBudgetMessages * int64(o.MaxRecvBytes)
	}
	m, err := newMetrics(o.Registerer, db, &o)
	if err != nil {
		return nil, err
	}
	ic := &interceptors{log: o.Logger, metrics: m, version: o.Version}
	if o.Token != "" {
		sum := sha256.Sum256([]byte(o.Token))
		ic.tokenSum = &sum
	}
	// The service's methods read their messages through one receive
	// gate; health and reflection through another, of one message, so
	// that they never wait behind uploads. The services of Register (the
	// cluster's Raft messages, between nodes holding the token) are not
	// gated, only checked for the token before their messages are read: a
	// Raft heartbeat must not wait behind a large entry.
	recvMain := newRecvGate(o.RecvBudgetBytes, int64(o.MaxRecvBytes), o.RecvTimeout, ic.authenticate)
	recvAux := newRecvGate(int64(o.MaxRecvBytes), int64(o.MaxRecvBytes), o.RecvTimeout, ic.authenticate)
	gopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(o.MaxRecvBytes),
		grpc.ForceServerCodecV2(newRequestCodec()),
		// A static 64 KiB stream window (grpc-go's default start; its
		// BDP estimation would grow it to 16 MiB): what a request holds
		// before the receive gate lets its message be read. The
		// connection's window does not hold data (grpc-go opens it as
		// data arrives), so it may be large, for fast links.
		grpc.StaticStreamWindowSize(64 << 10),
		grpc.StaticConnWindowSize(16 << 20),
		grpc.ChainUnaryInterceptor(ic.unary()...),
		grpc.ChainStreamInterceptor(ic.stream()...),
	}
	if o.TLS != nil && !o.HTTP {
		// With HTTP the HTTP server terminates TLS (serveMixed).
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	s := &Server{grpc: grpc.NewServer(gopts...), health: health.NewServer(), log: o.Logger, version: o.Version, recv: recvMain}
	var svc pb.WPCDBServiceServer = &service{db: db, snapshotRoot: o.SnapshotRoot, importRoot: o.ImportRoot, importTo: o.ImportTo, metrics: m,
		inflight: semaphore.NewWeighted(o.MaxInflightFloats), inflightMax: o.MaxInflightFloats}
	if o.Wrap != nil {
		svc = o.Wrap(svc)
	}
	pb.RegisterWPCDBServiceServer(gatedRegistrar{s.grpc, recvMain}, svc)
	aux := gatedRegistrar{s.grpc, recvAux}
	if o.Register != nil {
		o.Register(gatedRegistrar{s.grpc, newRecvGate(0, 0, 0, ic.authenticate)})
	}
	healthpb.RegisterHealthServer(aux, s.health)
	reflection.Register(aux)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	if m != nil {
		m.grpc.InitializeMetrics(s.grpc) // every method's counters from 0
	}
	if o.HTTP {
		h, err := s.newHTTPHandler(o.MaxRecvBytes)
		if err != nil {
			return nil, fmt.Errorf("server: HTTP routes: %w", err)
		}
		h = recvHTTP(recvMain, recvAux, ic.authorizedHTTP, h)
		s.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)}
		if o.TLS != nil {
			s.httpSrv.TLSConfig = o.TLS.Clone()
		}
	}
	return s, nil
}

// Serve accepts connections on lis until Stop; it returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	if s.httpSrv != nil {
		s.log.Info("serving gRPC and HTTP/JSON", "addr", lis.Addr().String())
		return s.serveMixed(lis)
	}
	s.log.Info("serving gRPC", "addr", lis.Addr().String())
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop stops the server gracefully: health turns NOT_SERVING, new requests
// are refused and in-flight ones finish. When ctx ends first, the remaining
// requests are cancelled (their contexts end, so the core stops their work)
// and Stop returns ctx's error.
func (s *Server) Stop(ctx context.Context) error {
	s.health.Shutdown()
	done := make(chan struct{})
	httpErr := make(chan error, 1)
	go func() { httpErr <- s.stopHTTP(ctx) }()
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return <-httpErr
	case <-ctx.Done():
		s.log.Warn("graceful stop deadline passed; cancelling in-flight requests")
		s.grpc.Stop()
		<-done
		<-httpErr
		return ctx.Err()
	}
}
