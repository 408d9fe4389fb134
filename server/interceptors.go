package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb/internal/rpcerr"
)

// interceptors holds what the chained interceptors need. Order, outermost
// first: metrics, then the version header and logging (they see the final
// code, including auth failures and recovered panics), status mapping,
// recovery, auth, and for unary calls the receive gate's refusals
// (gateInterceptor).
type interceptors struct {
	log     *slog.Logger
	metrics *metrics
	// version goes back in every response's header "wpcdb-version"
	// (health checks included); empty: no header.
	version string
	// tokenSum is the SHA-256 of the bearer token; nil means no auth.
	tokenSum *[sha256.Size]byte
}

func (ic *interceptors) unary() []grpc.UnaryServerInterceptor {
	chain := []grpc.UnaryServerInterceptor{
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if ic.version != "" {
				grpc.SetHeader(ctx, metadata.Pairs(versionHeader, ic.version))
			}
			start := time.Now()
			resp, err := h(ctx, req)
			ic.done(ctx, info.FullMethod, start, err)
			return resp, err
		},
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			if err != nil {
				return nil, rpcerr.Status(err)
			}
			return resp, nil
		},
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
			defer ic.recover(info.FullMethod, &err)
			return h(ctx, req)
		},
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := ic.authenticate(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		},
		gateInterceptor,
	}
	if m := ic.metrics.unary(); m != nil {
		chain = append([]grpc.UnaryServerInterceptor{m}, chain...)
	}
	return chain
}

func (ic *interceptors) stream() []grpc.StreamServerInterceptor {
	chain := []grpc.StreamServerInterceptor{
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if ic.version != "" {
				ss.SetHeader(metadata.Pairs(versionHeader, ic.version))
			}
			start := time.Now()
			err := h(srv, ss)
			ic.done(ss.Context(), info.FullMethod, start, err)
			return err
		},
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return rpcerr.Status(h(srv, ss))
		},
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer ic.recover(info.FullMethod, &err)
			return h(srv, ss)
		},
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := ic.authenticate(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		},
	}
	if m := ic.metrics.stream(); m != nil {
		chain = append([]grpc.StreamServerInterceptor{m}, chain...)
	}
	return chain
}

// versionHeader is the response header that carries the server's version.
const versionHeader = "wpcdb-version"

// done records a finished request in the log. Successes
// log at debug, client errors at info, server errors at error.
func (ic *interceptors) done(ctx context.Context, method string, start time.Time, err error) {
	d := time.Since(start)
	code := status.Code(err)
	level := slog.LevelDebug
	switch code {
	case codes.OK:
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unavailable:
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	if !ic.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("method", method), slog.String("code", code.String()), slog.Duration("duration", d)}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	ic.log.LogAttrs(ctx, level, "rpc", attrs...)
}

// recover turns a handler's panic into an Internal error (without the
// panic value, which may hold data) and logs it with the stack.
func (ic *interceptors) recover(method string, err *error) {
	if r := recover(); r != nil {
		ic.log.Error("panic in handler", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = fmt.Errorf("%w (panic in %s)", errPanic, method)
	}
}

// open reports whether a method needs no token: the health and reflection
// services, which load balancers and grpcurl call without credentials.
func open(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(method, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(method, "/grpc.reflection.v1alpha.ServerReflection/")
}

// authenticate checks "authorization: Bearer <token>". The digests are
// compared, in constant time, so neither the token's bytes nor its length
// leak through timing.
func (ic *interceptors) authenticate(ctx context.Context, method string) error {
	if ic.tokenSum == nil || open(method) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if ic.bearer(md.Get("authorization")) {
		return nil
	}
	return errUnauthenticated
}

// authorizedHTTP reports whether an HTTP request carries the token (or
// needs none): recvHTTP reads no body for a request that does not.
func (ic *interceptors) authorizedHTTP(r *http.Request) bool {
	return ic.tokenSum == nil || open(r.URL.Path) || ic.bearer(r.Header.Values("Authorization"))
}

// bearer reports whether one of the authorization values is the token.
func (ic *interceptors) bearer(vals []string) bool {
	for _, v := range vals {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			continue
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if subtle.ConstantTimeCompare(sum[:], ic.tokenSum[:]) == 1 {
			return true
		}
	}
	return false
}
