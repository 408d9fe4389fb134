package server

import (
	"context"
	"testing"
	"time"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// BenchmarkRecvGate is the gate's cost per small message (a Search's):
// the reservation, the read through dec, proto.Size and the release, with
// and without the receive timeout's goroutine and timer.
func BenchmarkRecvGate(b *testing.B) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		b.Run("timeout="+timeout.String(), func(b *testing.B) {
			g := newRecvGate(2<<20, 1<<20, timeout, nil)
			req := &pb.SearchRequest{Collection: "c", K: 10, Query: &pb.Cloud{Dim: 64, Points: make([]float32, 8*64)}}
			dec := func(m any) error { m.(*pb.SearchRequest).K = req.K; return nil }
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, h := g.holdFrom(context.Background())
					if err := h.read(ctx, req, dec); err != nil {
						b.Fatal(err)
					}
					h.release()
				}
			})
		})
	}
}
