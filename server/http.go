package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// HTTP/JSON: the same service over HTTP/1.1 and HTTP/2 with protojson
// bodies, on the gRPC port. Vanguard transcodes each HTTP request into a
// gRPC call to the same grpc.Server, so one implementation answers both,
// through the same interceptors (auth, limits, logs, metrics); the HTTP
// status comes from the gRPC code and the body carries the message.

// httpRoutes maps the REST routes onto the service's methods. A request
// body is the request message in protojson, path variables fill the named
// fields. Vanguard v0.4.0 applies a rule to every method its selector
// prefixes, so a rule for Get would also apply to GetMany (and fail: no id
// field); Get's route is served apart (alone), by a transcoder of its own
// over a copy of the service's schema holding Get only.
var httpRoutes = []struct {
	method, verb, path, body string
	alone                    bool
}{
	{"Get", "GET", "/v1/collections/{collection}/items/{id=**}", "", true},
	{"CreateCollection", "POST", "/v1/collections", "*", false},
	{"ListCollections", "GET", "/v1/collections", "", false},
	{"DescribeCollection", "GET", "/v1/collections/{name}", "", false},
	{"DropCollection", "DELETE", "/v1/collections/{name}", "", false},
	{"UpsertBatch", "POST", "/v1/collections/{collection}/upsert", "*", false},
	{"UpdateAttrs", "POST", "/v1/collections/{collection}/attrs", "*", false},
	{"Delete", "POST", "/v1/collections/{collection}/delete", "*", false},
	{"GetMany", "POST", "/v1/collections/{collection}/get", "*", false},
	{"Scroll", "POST", "/v1/collections/{collection}/scroll", "*", false},
	{"Count", "POST", "/v1/collections/{collection}/count", "*", false},
	{"Search", "POST", "/v1/collections/{collection}/search", "*", false},
	{"BatchSearch", "POST", "/v1/collections/{collection}/batch-search", "*", false},
	{"Rerank", "POST", "/v1/collections/{collection}/rerank", "*", false},
	{"Calibrate", "POST", "/v1/collections/{collection}/calibrate", "*", false},
	{"ListSnapshots", "GET", "/v1/snapshots", "", false},
	{"Snapshot", "POST", "/v1/snapshots", "*", false},
}

// httpRules returns the rules of the routes that are alone or not.
func httpRules(alone bool) []*annotations.HttpRule {
	var rules []*annotations.HttpRule
	for _, r := range httpRoutes {
		if r.alone != alone {
			continue
		}
		rule := &annotations.HttpRule{Selector: ServiceName + "." + r.method, Body: r.body}
		switch r.verb {
		case "GET":
			rule.Pattern = &annotations.HttpRule_Get{Get: r.path}
		case "POST":
			rule.Pattern = &annotations.HttpRule_Post{Post: r.path}
		case "DELETE":
			rule.Pattern = &annotations.HttpRule_Delete{Delete: r.path}
		}
		rules = append(rules, rule)
	}
	return rules
}

// aloneTranscoder serves the routes marked alone, each method through a
// schema of the service that holds that method only, so that its rule's
// selector matches it alone. Its unknown routes go to next.
func (s *Server) aloneTranscoder(maxBytes int, next http.Handler) (http.Handler, error) {
	var services []*vanguard.Service
	for _, r := range httpRoutes {
		if !r.alone {
			continue
		}
		fd := protodesc.ToFileDescriptorProto(pb.File_wpcdb_v1_wpcdb_proto)
		fd.Name = proto.String(fd.GetName() + "#" + r.method) // a private copy, never registered
		for _, svc := range fd.Service {
			svc.Method = slices.DeleteFunc(svc.Method, func(m *descriptorpb.MethodDescriptorProto) bool { return m.GetName() != r.method })
		}
		f, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
		if err != nil {
			return nil, err
		}
		// Its messages are dynamic ones of the copy (the path variables
		// are its fields); on the wire they are the service's own.
		services = append(services, vanguard.NewServiceWithSchema(f.Services().Get(0), s.grpc))
	}
	return vanguard.NewTranscoder(services,
		vanguard.WithRules(httpRules(true)...),
		vanguard.WithCodec(newRequestJSON),
		vanguard.WithUnknownHandler(next),
		vanguard.WithDefaultServiceOptions(
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithMaxMessageBufferBytes(uint32(maxBytes))),
	)
}

// newHTTPHandler returns the handler that serves every protocol on the
// port: gRPC (passed through to s.grpc), and REST, Connect and gRPC-Web
// (transcoded to gRPC calls).
func (s *Server) newHTTPHandler(maxBytes int) (http.Handler, error) {
	main, err := vanguardgrpc.NewTranscoder(s.grpc,
		vanguard.WithRules(httpRules(false)...),
		vanguard.WithCodec(newRequestJSON),
		vanguard.WithDefaultServiceOptions(vanguard.WithMaxMessageBufferBytes(uint32(maxBytes))),
	)
	if err != nil {
		return nil, err
	}
	t, err := s.aloneTranscoder(maxBytes, main)
	if err != nil {
		return nil, err
	}
	doc, err := openAPIDoc()
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/openapi.json" && r.Method == http.MethodGet {
			// The schema, not data: served without a token.
			w.Header().Set("Content-Type", "application/json")
			w.Write(doc)
			return
		}
		if r.URL.Path == "/v1/health" && r.Method == http.MethodGet {
			// Like the gRPC health service: no token.
			s.serveHealth(w, r)
			return
		}
		// A REST body is always JSON: `curl -d` labels it a form.
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			if ct := r.Header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
				r.Header.Set("Content-Type", "application/json")
			}
		}
		t.ServeHTTP(w, r)
	}), nil
}

// serveHealth answers GET /v1/health with the service's serving status
// (as the gRPC health service reports it) and the server's version:
// {"status": "SERVING", "version": "v1.2.3"}; 503 when not serving.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	st := "NOT_SERVING"
	if h, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: ServiceName}); err == nil {
		st = h.GetStatus().String()
	}
	w.Header().Set("Content-Type", "application/json")
	if st != healthpb.HealthCheckResponse_SERVING.String() {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]string{"status": st, "version": s.version})
}

// http2Preface is what an HTTP/2 client sends first (gRPC always speaks
// HTTP/2; curl and most HTTP/JSON clients speak HTTP/1.1 in plaintext).
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// serveMixed serves gRPC and HTTP/JSON on one listener. In plaintext it
// looks at each connection's first bytes: HTTP/2 goes to the gRPC server
// directly (its fast path), anything else to the HTTP server. With TLS an
// HTTP server takes every connection (it negotiates h2 or http/1.1) and
// passes gRPC requests to the gRPC server's ServeHTTP.
func (s *Server) serveMixed(lis net.Listener) error {
	if s.httpSrv.TLSConfig != nil {
		err := s.httpSrv.ServeTLS(lis, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	grpcLis := newChanListener(lis.Addr())
	httpLis := newChanListener(lis.Addr())
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		lis.Close()
		return nil
	}
	s.mixedLis = append(s.mixedLis, lis)
	s.mu.Unlock()
	errc := make(chan error, 3)
	go func() { errc <- s.grpc.Serve(grpcLis) }()
	go func() { errc <- s.httpSrv.Serve(httpLis) }()
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				grpcLis.Close()
				httpLis.Close()
				errc <- err
				return
			}
			go route(conn, grpcLis, httpLis)
		}
	}()
	var first error
	for range 3 {
		err := <-errc
		if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) || errors.Is(err, errListenerClosed) || errors.Is(err, grpc.ErrServerStopped) {
			err = nil
		}
		if err != nil && first == nil {
			first = err
			lis.Close() // stop the others
		}
	}
	return first
}

// route hands a connection to the gRPC or the HTTP listener by its first
// bytes.
func route(conn net.Conn, grpcLis, httpLis *chanListener) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, len(http2Preface))
	isH2 := true
	for i := 1; i <= len(http2Preface); i++ {
		b, err := br.Peek(i)
		if err != nil {
			conn.Close()
			return
		}
		if !bytes.Equal(b, http2Preface[:i]) {
			isH2 = false
			break
		}
	}
	conn.SetReadDeadline(time.Time{})
	c := &peekedConn{Conn: conn, r: br}
	if isH2 {
		grpcLis.deliver(c)
	} else {
		httpLis.deliver(c)
	}
}

// peekedConn replays the bytes read to route it.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

var errListenerClosed = errors.New("server: listener closed")

// chanListener is a net.Listener fed by route.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, errListenerClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// stopHTTP shuts the HTTP side down: no new connections, in-flight
// requests finish until ctx ends.
func (s *Server) stopHTTP(ctx context.Context) error {
	if s.httpSrv == nil {
		return nil
	}
	s.mu.Lock()
	s.stopped = true
	for _, lis := range s.mixedLis {
		lis.Close()
	}
	s.mu.Unlock()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.httpSrv.Close()
		return fmt.Errorf("server: HTTP shutdown: %w", err)
	}
	return nil
}

// requestJSON is vanguard's JSON codec whose decoding errors are
// InvalidArgument: a body that is not the request message in JSON (a
// syntax error, invalid UTF-8, data after the object) is the client's
// fault, a 400, where vanguard reports Unknown (a 500).
type requestJSON struct{ *vanguard.JSONCodec }

func newRequestJSON(res vanguard.TypeResolver) vanguard.Codec {
	return requestJSON{vanguard.NewJSONCodec(res)}
}

func (c requestJSON) Unmarshal(data []byte, msg proto.Message) error {
	if err := c.JSONCodec.Unmarshal(data, msg); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}

func (c requestJSON) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	if err := c.JSONCodec.UnmarshalField(data, msg, field); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}
