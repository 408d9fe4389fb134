package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{wpcerr.New(wpcerr.Unauthenticated, "server: no token"), codes.Unauthenticated},
		{fmt.Errorf("%w: %w", wpcdb.ErrCorrupt, wpcdb.ErrInvalidArgument), codes.DataLoss}, // corrupt first
		{wpcerr.Errorf(wpcdb.ErrInvalidArgument, "bad"), codes.InvalidArgument},
		{fmt.Errorf("%w: c", wpcdb.ErrCollectionNotFound), codes.NotFound},
		{wpcdb.ErrNotFound, codes.NotFound},
		{wpcdb.ErrCollectionExists, codes.AlreadyExists},
		{fs.ErrExist, codes.AlreadyExists},
		{wpcdb.ErrResourceExhausted, codes.ResourceExhausted},
		{wpcdb.ErrClosed, codes.Unavailable},
		{wpcdb.ErrIncompatible, codes.FailedPrecondition},
		{wpcdb.ErrFailedPrecondition, codes.FailedPrecondition},
		{errors.New("disk on fire"), codes.Internal},
		// A shard's status inside an ingest's error keeps its code.
		{fmt.Errorf("row 7: %w", status.Error(codes.Unavailable, "shard 1 down")), codes.Unavailable},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestStatus(t *testing.T) {
	if Status(nil) != nil {
		t.Fatal("nil is not an error")
	}
	// A status keeps its code and message.
	in := status.Error(codes.Unavailable, "shard 2 down")
	if got := Status(in); got != in {
		t.Fatalf("status rewritten: %v", got)
	}
	// A refused item carries its message and a detail naming it.
	bad := wpcdb.NewInvalidItem(3, "x", &wpcerr.FieldError{Field: "weights[0]", Reason: "is NaN", Sentinel: wpcdb.ErrInvalidArgument})
	st := status.Convert(Status(fmt.Errorf("batch: %w", bad)))
	if st.Code() != codes.InvalidArgument || st.Message() != `batch: invalid argument: item 3 (id "x"): weights[0]: is NaN` {
		t.Fatalf("%v", st.Proto())
	}
	if d := st.Details(); len(d) != 1 || d[0].(*pb.InvalidItem).GetIndex() != 3 || d[0].(*pb.InvalidItem).GetId() != "x" || d[0].(*pb.InvalidItem).GetReason() != "weights[0]: is NaN" {
		t.Fatalf("details %v", d)
	}
}
