package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wpcdb/wpcdb/cluster"
	"github.com/wpcdb/wpcdb/internal/etcdtest"
	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// TestRouterReleasesRecv: a node whose receive budget holds one message
// routes a large UpsertBatch and a large Search of a sharded collection
// whose shard it holds itself. The router's calls to its shard (to this
// very node) need that place: it gives the request's back before calling
// (else the call waits for the place its own request holds, until the
// deadline).
func TestRouterReleasesRecv(t *testing.T) {
	ep := etcdtest.Start(t)
	n := startNode(t, ep, "n1", 0, func(o *server.Options) {
		o.MaxRecvBytes, o.RecvBudgetBytes = 1<<20, 1<<20
	})
	waitView(t, n.m.Client, "the node", func(v *cluster.View) bool { return len(v.Nodes()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "c", Config: &pb.CollectionConfig{Dim: 64, MaxPoints: 1024}}); err != nil {
		t.Fatal(err)
	}
	waitView(t, n.m.Client, "the sharded collection", func(v *cluster.View) bool { _, ok := v.Collection("c"); return ok })
	// 3 items of 1024 × 64 floats: 768 KiB, a large message.
	req := &pb.UpsertBatchRequest{Collection: "c"}
	for i := range 3 {
		pts := make([]float32, 64*1024)
		for j := range pts {
			pts[j] = float32((i+j)%5) / 5
		}
		req.Items = append(req.Items, &pb.Item{Id: fmt.Sprint(i), Cloud: &pb.Cloud{Dim: 64, Points: pts}})
	}
	if _, err := n.cli.UpsertBatch(ctx, req); err != nil {
		t.Fatalf("routed UpsertBatch: %v", err)
	}
	res, err := n.cli.Search(ctx, &pb.SearchRequest{Collection: "c", K: 3, Query: req.Items[0].Cloud})
	if err != nil {
		t.Fatalf("routed Search: %v", err)
	}
	if len(res.GetHits()) != 3 {
		t.Errorf("hits %v, want 3", res.GetHits())
	}
}
