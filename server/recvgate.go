package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/recvhold"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// The receive gate bounds the memory of request messages that are being
// received and decoded, which the in-flight budget (service.admit) cannot:
// grpc-go reads a whole message (up to MaxRecvBytes) and decodes it before
// any handler or interceptor runs, so before the gate 8 concurrent 60 MB
// UpsertBatch requests took a server to 1.8 GB (4: 1.06 GB; 1: 298 MB;
// scripts/recvmem).
//
// Where it waits. With the HTTP/2 transport a stream's data beyond its flow
// control window is granted only when the application reads the message:
// parser.recvMsg reads the 5-byte header, then asks for the whole length
// (Stream.read → requestRead → adjustWindow). The read happens inside the
// `dec` function grpc-go passes to a method's handler (unary) or in
// ServerStream.RecvMsg (streams), on the RPC's own goroutine. So the gate
// wraps every method of the services it guards (gateService) and takes its
// reservation just before that read: a waiting request holds no more than
// its stream window, which New fixes at 64 KiB (a static window: grpc-go's
// BDP estimation would otherwise grow it to 16 MiB). Nothing blocks on the
// transport's reader goroutine. A stats handler's Begin would also run on
// the RPC's goroutine before the read, but it does not know the method, and
// the method wrapper gives the reservation to the handler through its ctx.
//
// What it reserves. The size of a message is known only once it is read,
// so each message reserves MaxRecvBytes of the budget (RecvBudgetBytes, by
// default two such messages) and keeps it while it is read and decoded. A
// decoded message of at most smallMsgBytes gives it back at once (no more
// than an unread stream may hold in its window). A larger one keeps it
// until its handler has taken its in-flight reservation (admit calls
// releaseRecv), or to the handler's end: a decoded request waiting for the
// in-flight budget still counts. A request that finds no room before its
// deadline is RESOURCE_EXHAUSTED. A message that does not arrive within
// the receive timeout once its place is taken is DEADLINE_EXCEEDED, so a
// slow or stalled sender keeps a place for that long at most (an HTTP
// body too, through its read deadline, except an Upsert stream's).
//
// Before the read the gate also checks the bearer token, so an
// unauthenticated client never makes the server read its message.
//
// The HTTP server's requests (REST, Connect, gRPC-Web, and gRPC under TLS
// with HTTP) come through net/http, whose grpc-go transport reads a body as
// fast as it arrives, not when the handler asks: the HTTP handler reserves
// before it serves a request (recvHTTP) and lets the body be read only
// while its reservation is held.
type recvGate struct {
	sem     *semaphore.Weighted
	budget  int64
	perMsg  int64                                          // what each message reserves: MaxRecvBytes
	auth    func(ctx context.Context, method string) error // the bearer token check; nil: none
	waiting atomic.Int64                                   // requests waiting for room
	held    atomic.Int64                                   // reservations held
	timeout time.Duration                                  // to receive a message once its place is taken; 0: none

	// testEnter, when set, is called as a message's read begins, with the
	// reservations then held.
	testEnter func(held int64)
}

// smallMsgBytes: a decoded message at most this large gives its
// reservation back before its handler runs. It is the stream window New
// sets (64 KiB), what any stream may hold before its message is read.
const smallMsgBytes = 64 << 10

// A gate with no budget (0) only checks the token before the read and
// decodes through requestCodec: no reservation, no timeout.
func newRecvGate(budget, perMsg int64, timeout time.Duration, auth func(context.Context, string) error) *recvGate {
	if budget <= 0 {
		return &recvGate{auth: auth}
	}
	budget = max(budget, perMsg)
	return &recvGate{sem: semaphore.NewWeighted(budget), budget: budget, perMsg: perMsg, timeout: timeout, auth: auth}
}

// recvHold is one request's reservation, reached through its ctx.
type recvHold struct {
	g    *recvGate
	mu   sync.Mutex
	held bool
	wake chan struct{} // closed once held (a gated HTTP body waits on it)
	// err is why a unary request's message was not read (no token, no
	// room, or a message that does not decode); the gate interceptor
	// returns it, so logs and metrics see it.
	err error
}

// holdFrom returns ctx's hold, or a new one and ctx carrying it.
func (g *recvGate) holdFrom(ctx context.Context) (context.Context, *recvHold) {
	if h, ok := recvhold.From(ctx).(*recvHold); ok && h.g == g {
		return ctx, h
	}
	h := &recvHold{g: g, wake: make(chan struct{})}
	return recvhold.With(ctx, h), h
}

// Release is release (recvhold.Holder).
func (h *recvHold) Release() { h.release() }

// acquire reserves the hold's message, waiting for room until ctx ends.
// One goroutine at a time acquires a hold (its handler's, or the HTTP
// handler's before it serves the request).
func (h *recvHold) acquire(ctx context.Context) error {
	h.mu.Lock()
	held := h.held
	h.mu.Unlock()
	g := h.g
	if held || g.sem == nil {
		return nil
	}
	g.waiting.Add(1)
	err := g.sem.Acquire(ctx, g.perMsg)
	g.waiting.Add(-1)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return wpcerr.Errorf(wpcdb.ErrResourceExhausted, "server: no room to receive the request before its deadline: the server receives at most %d messages of up to %d MiB at once", g.budget/g.perMsg, g.perMsg>>20)
	}
	h.mu.Lock()
	h.held = true
	close(h.wake)
	h.mu.Unlock()
	g.held.Add(1)
	return nil
}

// release gives the reservation back (once; a later acquire may take it
// again, for a stream's next message).
func (h *recvHold) release() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		return
	}
	h.held = false
	h.wake = make(chan struct{})
	h.g.held.Add(-1)
	h.g.sem.Release(h.g.perMsg)
}

// releaseRecv gives back the receive reservation of ctx's request, if it
// holds one: its handler has reserved what it holds in the in-flight
// budget.
func releaseRecv(ctx context.Context) { recvhold.Release(ctx) }

// read reads one message into m through dec under the hold's reservation,
// and gives the reservation back when the decoded message is small or
// when reading failed.
func (h *recvHold) read(ctx context.Context, m any, dec func(any) error) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	if f := h.g.testEnter; f != nil {
		f(h.g.held.Load())
	}
	decode := func() error {
		err := dec(m)
		if err == nil {
			err = takeUndecoded(m) // requestCodec
		}
		if pm, ok := m.(proto.Message); err != nil || !ok || proto.Size(pm) <= smallMsgBytes {
			h.release()
		}
		return err
	}
	t := h.g.timeout
	if t <= 0 {
		return decode()
	}
	// The read goes on in its own goroutine so that a sender too slow to
	// deliver its message within the timeout does not keep its place: the
	// handler returns the error at once (its message is left to that
	// goroutine alone), grpc-go then ends the stream, which ends the
	// read. The place is given back when the handler returns. The
	// goroutine and the timer cost about 1.5 µs of CPU a message
	// (BenchmarkRecvGate: 2.2–2.9 µs an op on 2 parallel goroutines,
	// against 0.8–0.9 µs without), under 1% of a small Search's 0.33–0.44
	// ms of server CPU (bench --workload load).
	done := make(chan error, 1)
	go func() { done <- decode() }()
	timer := time.NewTimer(t)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return errRecvTimeout{t}
	}
}

// errRecvTimeout: a message did not arrive within the receive timeout.
// The method wrappers return it as it is (the message is being written
// by the abandoned read): it is a status already.
type errRecvTimeout struct{ t time.Duration }

func (e errRecvTimeout) Error() string { return e.GRPCStatus().Message() }

func (e errRecvTimeout) GRPCStatus() *status.Status {
	return status.Newf(codes.DeadlineExceeded, "server: the request's message did not arrive within the receive timeout (%v)", e.t)
}

// gateService returns a copy of sd whose methods read their messages
// through g.
func gateService(sd *grpc.ServiceDesc, g *recvGate) *grpc.ServiceDesc {
	d := *sd
	d.Methods = make([]grpc.MethodDesc, len(sd.Methods))
	for i, md := range sd.Methods {
		h, method := md.Handler, "/"+sd.ServiceName+"/"+md.MethodName
		d.Methods[i] = grpc.MethodDesc{MethodName: md.MethodName, Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			ctx, hold := g.holdFrom(ctx)
			defer hold.release()
			return h(srv, ctx, func(m any) error {
				// An error here would skip the interceptors (the
				// generated handler returns it before calling them):
				// hold.err keeps it for gateInterceptor, and the
				// message stays unread.
				if g.auth != nil {
					if err := g.auth(ctx, method); err != nil {
						hold.err = err
						return nil
					}
				}
				err := hold.read(ctx, m, dec)
				if errors.As(err, new(errRecvTimeout)) {
					return err
				}
				hold.err = err
				return nil
			}, ic)
		}}
	}
	d.Streams = make([]grpc.StreamDesc, len(sd.Streams))
	for i, sdesc := range sd.Streams {
		h := sdesc.Handler
		d.Streams[i] = sdesc
		d.Streams[i].Handler = func(srv any, ss grpc.ServerStream) error {
			// The stream interceptors (auth among them) ran before this.
			ctx, hold := g.holdFrom(ss.Context())
			defer hold.release()
			return h(srv, &gatedStream{ServerStream: ss, ctx: ctx, hold: hold})
		}
	}
	return &d
}

// gatedStream reads each message under its hold; the reservation of a
// message is given back at the next RecvMsg at the latest.
type gatedStream struct {
	grpc.ServerStream
	ctx  context.Context
	hold *recvHold
	read bool // a message was read: the hold is its, not one taken before
}

func (s *gatedStream) Context() context.Context { return s.ctx }

func (s *gatedStream) RecvMsg(m any) error {
	if s.read {
		s.hold.release()
	}
	s.read = true
	return s.hold.read(s.ctx, m, s.ServerStream.RecvMsg)
}

// gateInterceptor (unary, inside auth) returns the error the gate kept
// for a request whose message it did not read.
func gateInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if hold, ok := recvhold.From(ctx).(*recvHold); ok && hold.err != nil {
		return nil, hold.err
	}
	return h(ctx, req)
}

// recvHTTP reserves room for each request the HTTP server takes, before
// it is served, and lets its body be read only while the reservation is
// held: the first message at once, a stream's next one when its handler
// asks for it (grpc-go's handler transport would otherwise read a whole
// stream ahead into memory). The methods' gate then finds the hold in the
// request's ctx, and gives it back as for a gRPC request. A request
// without the token keeps no body: the call is refused unread.
func recvHTTP(main, aux *recvGate, authorized func(r *http.Request) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodDelete || r.Body == nil || r.Body == http.NoBody {
			// No body: nothing to hold (a GET's variables are in its
			// URL, which the server bounds).
			next.ServeHTTP(w, r)
			return
		}
		g := main
		if p := r.URL.Path; !strings.HasPrefix(p, "/v1/") && !strings.HasPrefix(p, "/"+ServiceName+"/") {
			g = aux // health, reflection, the cluster's replication
		}
		if authorized != nil && !authorized(r) {
			r.Body.Close()
			r.Body = http.NoBody
			r.ContentLength = 0
			next.ServeHTTP(w, r)
			return
		}
		ctx, hold := g.holdFrom(r.Context())
		defer hold.release()
		if err := hold.acquire(ctx); err != nil {
			code := http.StatusServiceUnavailable
			if errors.Is(err, context.Canceled) {
				code = 499 // the client went away
			}
			http.Error(w, err.Error(), code)
			return
		}
		if g.timeout > 0 && r.URL.Path != streamingUpsert {
			// The body must arrive within the receive timeout (every
			// call but a gRPC Upsert stream has one request message).
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.timeout))
		}
		body := &gatedBody{ReadCloser: r.Body, ctx: ctx, hold: hold, closed: make(chan struct{})}
		r = r.WithContext(ctx)
		r.Body = body
		next.ServeHTTP(w, r)
	})
}

// streamingUpsert is the path of the one method whose request is a stream
// of messages (over gRPC, gRPC-Web or Connect).
const streamingUpsert = "/" + ServiceName + "/Upsert"

// gatedBody reads only while its hold is held.
type gatedBody struct {
	io.ReadCloser
	ctx    context.Context
	hold   *recvHold
	once   sync.Once
	closed chan struct{} // Close wakes a waiting Read
}

func (b *gatedBody) Read(p []byte) (int, error) {
	for {
		b.hold.mu.Lock()
		held, wake := b.hold.held, b.hold.wake
		b.hold.mu.Unlock()
		if held {
			return b.ReadCloser.Read(p)
		}
		select {
		case <-wake:
		case <-b.closed:
			return 0, http.ErrBodyReadAfterClose
		case <-b.ctx.Done():
			return 0, fmt.Errorf("server: request body: %w", b.ctx.Err())
		}
	}
}

func (b *gatedBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.ReadCloser.Close()
}

// gatedRegistrar registers services on a grpc.Server through a gate.
type gatedRegistrar struct {
	*grpc.Server
	g *recvGate
}

func (r gatedRegistrar) RegisterService(sd *grpc.ServiceDesc, impl any) {
	r.Server.RegisterService(gateService(sd, r.g), impl)
}
