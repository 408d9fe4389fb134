package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/cluster"
	"github.com/wpcdb/wpcdb/internal/etcdtest"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// TestSnapshotCatchUp: one shard × 3 replicas whose logs compact after 4
// entries (none kept). A follower crashes; the others take writes and
// deletes until their logs start far past its last entry; restarted, it
// cannot catch up from the log and installs a snapshot (a checkpoint of
// the leader's database) plus the log after it. Its copy then answers
// GetMany and searches with the ids and float64 scores of one node
// holding the same items, and later writes reach it through the log.
func TestSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ep := etcdtest.Start(t)
	var nodes []*rnode
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startRNode(t, ep, id, 4, -1))
	}
	one := startNode(t, "", "", 0)
	for _, n := range nodes {
		waitView(t, n.m.Client, "three nodes", func(v *cluster.View) bool { return len(v.Nodes()) == 3 })
	}
	const dim = 5
	cfg := pbconv.ConfigToPB(wpcdb.CollectionConfig{Dim: dim}.WithDefaults())
	if _, err := nodes[0].m.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "s", Config: cfg}, 1, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := one.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "s", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitView(t, n.m.Client, "s's leader", func(v *cluster.View) bool { m, ok := v.Collection("s"); return ok && m.Shards[0].Term > 0 })
	}
	const seed = 1920
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	item := func(i int) *pb.Item {
		return &pb.Item{Id: fmt.Sprintf("it-%03d", i), Cloud: pbCloud(wpctest.RandomCloud(rng, 2+rng.IntN(5), dim, wpctest.Shape{}))}
	}
	both := func(write func(cli pb.WPCDBServiceClient) error) {
		t.Helper()
		if err := write(nodes[0].cli); err != nil {
			t.Fatal(err)
		}
		if err := write(one.cli); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(from, n int) {
		t.Helper()
		items := make([]*pb.Item, n)
		for i := range items {
			items[i] = item(from + i)
		}
		both(func(cli pb.WPCDBServiceClient) error {
			_, err := cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "s", Items: items})
			return err
		})
	}
	batch(0, 6)
	batch(6, 6)
	m, _ := nodes[0].m.View().Collection("s")
	waitCaughtUp(t, m, nodes)
	var lag *rnode
	for _, n := range nodes {
		if n.id != m.Shards[0].Leader {
			lag = n
		}
	}
	lagSt, _ := lag.reps.Status("s.s0")
	t.Logf("%s crashes at %+v", lag.id, lagSt)
	lag.crash()
	// Writes and deletes (of items the follower has) while it is down.
	for b := range 12 {
		batch(12+4*b, 4)
	}
	both(func(cli pb.WPCDBServiceClient) error {
		_, err := cli.Delete(ctx, &pb.DeleteRequest{Collection: "s", Ids: []string{"it-001", "it-007", "it-020"}})
		return err
	})
	batch(2, 2) // rewritten with new clouds
	var lead *rnode
	for _, n := range nodes {
		if n.id == m.Shards[0].Leader {
			lead = n
		}
	}
	st, _ := lead.reps.Status("s.s0")
	if st.Compactions == 0 || st.First <= lagSt.Last+1 {
		t.Fatalf("the leader's log was not compacted past the follower's last entry %d: %+v", lagSt.Last, st)
	}
	lag.start()
	waitCaughtUp(t, m, nodes)
	got, _ := lag.reps.Status("s.s0")
	if got.Snapshots != 1 {
		t.Fatalf("the restarted follower caught up without one snapshot: %+v (the leader's log starts at %d)", got, st.First)
	}
	t.Logf("%s caught up: %+v", lag.id, got)

	// The follower's copy, read locally, is one node's.
	check := func(stage string) {
		t.Helper()
		var ids []string
		for i := range 70 {
			ids = append(ids, fmt.Sprintf("it-%03d", i))
		}
		want, err := one.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "s", Ids: ids})
		if err != nil {
			t.Fatal(err)
		}
		gm, err := lag.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "s.s0", Ids: ids})
		if err != nil || !proto.Equal(gm, want) {
			t.Fatalf("%s: GetMany on %s: %d items, missing %v (%v); want %d, missing %v", stage, lag.id, len(gm.GetItems()), gm.GetMissing(), err, len(want.Items), want.Missing)
		}
		for q := range 3 {
			query := pbCloud(wpctest.RandomCloud(rng, 3, dim, wpctest.Shape{}))
			for _, req := range []*pb.SearchRequest{{K: 10}, {K: 7, Exact: true}} {
				req.Query = query
				req.Collection = "s"
				w, err := one.cli.Search(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				req.Collection = "s.s0"
				g, err := lag.cli.Search(ctx, req)
				if err != nil || len(w.Hits) == 0 || !equalHits(g.Hits, w.Hits) {
					t.Fatalf("%s: query %d %v on %s: %v %v, want %v", stage, q, req, lag.id, g.GetHits(), err, w.Hits)
				}
			}
		}
	}
	check("after the snapshot")
	// Later writes reach it through the log.
	batch(60, 5)
	waitCaughtUp(t, m, nodes)
	check("after more writes")
}
