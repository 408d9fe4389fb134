package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/cluster"
	"github.com/wpcdb/wpcdb/internal/etcdtest"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// TestMoveDuringIngest: one shard × 3 replicas on three of four nodes,
// logs compacted to their last 20 entries. While a writer keeps upserting through
// a node that stays, the shard's leader replica moves to the fourth node
// (a learner that catches up from a snapshot, promoted, the leadership
// handed over, the old replica removed). Every acknowledged item is
// there: through the cluster with a strong read, and on the new replica
// read locally, with one node's ids and exact scores for searches; the
// shard map names the new replicas with the epoch raised; the old node
// dropped its copy.
func TestMoveDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and five servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ep := etcdtest.Start(t)
	var nodes []*rnode
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		nodes = append(nodes, startRNode(t, ep, id, 4, 20))
	}
	byID := func(id string) *rnode {
		return nodes[slices.IndexFunc(nodes, func(n *rnode) bool { return n.id == id })]
	}
	one := startNode(t, "", "", 0)
	for _, n := range nodes {
		waitView(t, n.m.Client, "four nodes", func(v *cluster.View) bool { return len(v.Nodes()) == 4 })
	}
	const dim = 5
	cfg := pbconv.ConfigToPB(wpcdb.CollectionConfig{Dim: dim}.WithDefaults())
	if _, err := nodes[0].m.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "mv", Config: cfg}, 1, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := one.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "mv", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitView(t, n.m.Client, "mv's leader", func(v *cluster.View) bool { m, ok := v.Collection("mv"); return ok && m.Shards[0].Term > 0 })
	}
	m0, _ := nodes[0].m.View().Collection("mv")
	s0 := m0.Shards[0]
	from := s0.Leader
	var to, stay string
	for _, n := range nodes {
		if !slices.Contains(s0.Replicas, n.id) {
			to = n.id
		} else if n.id != from {
			stay = n.id
		}
	}
	const seed = 1923
	t.Logf("seed %d; shard 0 on %v, leader %s: moving %s → %s while writing through %s", seed, s0.Replicas, from, from, to, stay)
	// Refusals, changing nothing.
	if _, err := byID(stay).m.Move(ctx, "mv", 0, to, from); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a move from a node that is not a replica: %v", err)
	}
	if _, err := byID(stay).m.Move(ctx, "mv", 1, from, to); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a move of shard 1 of 1: %v", err)
	}

	rng := wpctest.NewRand(seed)
	var (
		mu        sync.Mutex
		acked     []string
		ingestErr error
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			items := make([]*pb.Item, 4)
			for i := range items {
				items[i] = &pb.Item{Id: fmt.Sprintf("it-%04d", 4*b+i), Cloud: pbCloud(wpctest.RandomCloud(rng, 2+rng.IntN(4), dim, wpctest.Shape{}))}
			}
			if _, err := byID(stay).cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "mv", Items: items}); err != nil {
				ingestErr = fmt.Errorf("batch %d: %w", b, err)
				return
			}
			if _, err := one.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "mv", Items: items}); err != nil {
				ingestErr = err
				return
			}
			mu.Lock()
			for _, it := range items {
				acked = append(acked, it.Id)
			}
			mu.Unlock()
		}
	}()
	// 40 batches first, so that the logs are compacted past their start
	// and the new replica must begin from a snapshot.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 160 || ingestErr != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d items acknowledged in 20 s", n)
		}
	}
	mctx, mcancel := context.WithTimeout(ctx, 15*time.Second)
	s1, err := byID(stay).m.Move(mctx, "mv", 0, from, to)
	mcancel()
	if err != nil {
		close(stop)
		wg.Wait()
		for _, n := range nodes {
			st, ok := n.reps.Status("mv.s0")
			t.Logf("%s: %+v %v", n.id, st, ok)
		}
		t.Fatalf("move: %v (ingest: %v)", err, ingestErr)
	}
	// A few more batches after the move, then the writer stops.
	mu.Lock()
	after := len(acked) + 12
	mu.Unlock()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= after || ingestErr != nil || time.Now().After(deadline) {
			break
		}
	}
	close(stop)
	wg.Wait()
	if ingestErr != nil {
		t.Fatal(ingestErr)
	}
	t.Logf("moved: %+v; %d items acknowledged", s1, len(acked))
	if slices.Contains(s1.Replicas, from) || !slices.Contains(s1.Replicas, to) || len(s1.Replicas) != 3 || s1.Epoch <= s0.Epoch+1 || s1.Move != nil {
		t.Fatalf("shard 0 after the move: %+v, was %+v", s1, s0)
	}
	m1 := m0
	m1.Shards = []cluster.Shard{s1}
	var live []*rnode
	for _, id := range s1.Replicas {
		live = append(live, byID(id))
	}
	waitCaughtUp(t, m1, live)
	st, _ := byID(to).reps.Status("mv.s0")
	t.Logf("%s: %+v", to, st)
	if st.Snapshots < 1 {
		t.Fatalf("the new replica caught up without a snapshot although the logs were compacted: %+v", st)
	}

	// Every acknowledged item, through the cluster (strong) and on the new
	// replica, as one node has it.
	want, err := one.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "mv", Ids: acked})
	if err != nil || len(want.Missing) != 0 {
		t.Fatal(want.GetMissing(), err)
	}
	got, err := byID(stay).cli.GetMany(ctx, &pb.GetManyRequest{Collection: "mv", Ids: acked, Consistency: pb.Consistency_CONSISTENCY_STRONG})
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("strong GetMany of the %d acknowledged items: %d, missing %v (%v)", len(acked), len(got.GetItems()), got.GetMissing(), err)
	}
	local, err := byID(to).cli.GetMany(ctx, &pb.GetManyRequest{Collection: "mv.s0", Ids: acked})
	if err != nil || !proto.Equal(local, want) {
		t.Fatalf("GetMany on the new replica: %d, missing %v (%v)", len(local.GetItems()), local.GetMissing(), err)
	}
	for q := range 3 {
		query := pbCloud(wpctest.RandomCloud(rng, 3, dim, wpctest.Shape{}))
		w, err := one.cli.Search(ctx, &pb.SearchRequest{Collection: "mv", Query: query, K: 10})
		if err != nil {
			t.Fatal(err)
		}
		g, err := byID(to).cli.Search(ctx, &pb.SearchRequest{Collection: "mv.s0", Query: query, K: 10})
		if err != nil || len(w.Hits) == 0 || !equalHits(g.Hits, w.Hits) {
			t.Fatalf("query %d on the new replica: %v %v, want %v", q, g.GetHits(), err, w.Hits)
		}
	}
	// The old replica stopped its group and dropped its copy.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, running := byID(from).reps.Status("mv.s0")
		_, err := byID(from).cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: "mv.s0"})
		if !running && status.Code(err) == codes.NotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs mv.s0 (%v) or holds its copy (%v)", from, running, err)
		}
	}

	// A replica's node dies; `cluster replace` moves its replica to the
	// only live node outside the shard, the one that just left it.
	dead := byID(stay)
	dead.crash()
	survivor := byID(to)
	waitView(t, survivor.m.Client, stay+" gone", func(v *cluster.View) bool { _, ok := v.Node(stay); return !ok })
	if _, err := survivor.m.Replace(ctx, to); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("replacing a live node: %v", err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	rs, err := survivor.m.Replace(rctx, stay)
	rcancel()
	if err != nil || len(rs) != 1 || rs[0].Err != nil || rs[0].To != from {
		t.Fatalf("replace %s: %+v %v", stay, rs, err)
	}
	m2, _ := survivor.m.View().Collection("mv")
	t.Logf("replaced %s: %+v", stay, m2.Shards[0])
	if slices.Contains(m2.Shards[0].Replicas, stay) || !slices.Contains(m2.Shards[0].Replicas, from) {
		t.Fatalf("shard 0 after replacing %s: %+v", stay, m2.Shards[0])
	}
	live = live[:0]
	for _, id := range m2.Shards[0].Replicas {
		live = append(live, byID(id))
	}
	waitCaughtUp(t, m2, live)
	local, err = byID(from).cli.GetMany(ctx, &pb.GetManyRequest{Collection: "mv.s0", Ids: acked})
	if err != nil || !proto.Equal(local, want) {
		t.Fatalf("GetMany on the replacing replica %s: %d, missing %v (%v)", from, len(local.GetItems()), local.GetMissing(), err)
	}
	// The dead node comes back: its replica moved off while it was down,
	// so it drops its copy and runs no group for the shard.
	dead.start()
	if _, err := dead.cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: "mv.s0"}); status.Code(err) != codes.NotFound {
		t.Fatalf("%s after its restart still holds mv.s0: %v", stay, err)
	}
	if _, running := dead.reps.Status("mv.s0"); running {
		t.Fatalf("%s after its restart runs mv.s0's group", stay)
	}
}
