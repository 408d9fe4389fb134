package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// Errors raised by the server itself; statusOf gives their codes.
var (
	errUnauthenticated   = errors.New("server: missing or invalid bearer token")
	errPanic             = errors.New("server: internal error")
	errResourceExhausted = wpcerr.New(wpcdb.ErrResourceExhausted, "server: resource exhausted")
	// errSnapshotsDisabled: the server was started without a snapshot
	// directory.
	errSnapshotsDisabled = wpcerr.New(wpcdb.ErrFailedPrecondition, "server: snapshots are disabled: the server has no snapshot directory")
)

// invalid wraps a request problem found by the server (before the core
// sees it) so that it maps like the core's own validation errors.
func invalid(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return wpcdb.ErrInvalidArgument }

// statusOf is the one place where errors become gRPC statuses. An error
// that already is a status (from the transport: an oversized message is
// ResourceExhausted) keeps its code.
func statusOf(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	code := codeOf(err)
	st := status.New(code, err.Error())
	var bad *wpcdb.InvalidItem
	if code == codes.InvalidArgument && errors.As(err, &bad) {
		if d, derr := st.WithDetails(&pb.InvalidItem{Index: uint32(bad.Index), Id: bad.ID, Reason: bad.Cause.Error()}); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// codeOf maps the error kinds the wpcdb package exports (every lower
// package's errors belong to one) to gRPC codes. Corrupt comes first: a
// stored item that fails validation is corrupt data, not a bad request.
func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, errUnauthenticated):
		return codes.Unauthenticated
	case errors.Is(err, wpcdb.ErrCorrupt):
		return codes.DataLoss
	case errors.Is(err, wpcdb.ErrInvalidArgument):
		return codes.InvalidArgument
	case errors.Is(err, wpcdb.ErrCollectionNotFound), errors.Is(err, wpcdb.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, wpcdb.ErrCollectionExists), errors.Is(err, fs.ErrExist):
		return codes.AlreadyExists
	case errors.Is(err, wpcdb.ErrResourceExhausted):
		return codes.ResourceExhausted
	case errors.Is(err, wpcdb.ErrClosed):
		return codes.Unavailable
	case errors.Is(err, wpcdb.ErrIncompatible), errors.Is(err, wpcdb.ErrFailedPrecondition):
		return codes.FailedPrecondition
	}
	return codes.Internal
}
