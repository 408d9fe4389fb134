// Package rpcerr is the one map from wpcdb's errors to gRPC statuses,
// used by the server's handlers and by the cluster router, which answers
// for shards as one node would. Every error wpcdb returns belongs to one
// of internal/wpcerr's kinds, so the map is a table of kinds, as etcd's
// single error map is; a refused item (*wpcdb.InvalidItem) also travels
// as an InvalidItem detail naming it. Nothing here edits a message: the
// status carries the error's text as it is.
package rpcerr

import (
	"context"
	"errors"
	"io/fs"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// Status returns err as a gRPC status error (nil for nil). An error that
// already is a status (from the transport, or a shard's answer) keeps its
// code and message.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	code := Code(err)
	st := status.New(code, err.Error())
	var bad *wpcdb.InvalidItem
	if code == codes.InvalidArgument && errors.As(err, &bad) {
		if d, derr := st.WithDetails(&pb.InvalidItem{Index: uint32(bad.Index), Id: bad.ID, Reason: bad.Cause.Error()}); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// Code maps err's kind to a gRPC code (a wrapped status's code when it
// has none, else Internal).
// Corrupt comes first: a stored item that fails validation is corrupt
// data, not a bad request.
func Code(err error) codes.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, wpcerr.Unauthenticated):
		return codes.Unauthenticated
	case errors.Is(err, wpcerr.Corrupt):
		return codes.DataLoss
	case errors.Is(err, wpcerr.InvalidArgument):
		return codes.InvalidArgument
	case errors.Is(err, wpcerr.NotFound):
		return codes.NotFound
	case errors.Is(err, wpcerr.Exists), errors.Is(err, fs.ErrExist):
		return codes.AlreadyExists
	case errors.Is(err, wpcerr.ResourceExhausted):
		return codes.ResourceExhausted
	case errors.Is(err, wpcerr.Closed):
		return codes.Unavailable
	case errors.Is(err, wpcerr.Incompatible), errors.Is(err, wpcerr.FailedPrecondition):
		return codes.FailedPrecondition
	}
	// A status wrapped with context (a shard's answer inside an ingest's
	// "row N" error) keeps its code.
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		return st.GRPCStatus().Code()
	}
	return codes.Internal
}
