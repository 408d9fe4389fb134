package server

import (
	"errors"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// Errors raised by the server itself; internal/rpcerr gives their codes.
var (
	errUnauthenticated   = wpcerr.New(wpcerr.Unauthenticated, "server: missing or invalid bearer token")
	errPanic             = errors.New("server: internal error")
	errResourceExhausted = wpcerr.New(wpcdb.ErrResourceExhausted, "server: resource exhausted")
	// errSnapshotsDisabled: the server was started without a snapshot
	// directory.
	errSnapshotsDisabled = wpcerr.New(wpcdb.ErrFailedPrecondition, "server: snapshots are disabled: the server has no snapshot directory")
)

// invalid is a request problem found by the server (before the core sees
// it): it maps like the core's own validation errors.
func invalid(format string, args ...any) error {
	return wpcerr.Errorf(wpcdb.ErrInvalidArgument, format, args...)
}
