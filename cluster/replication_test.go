package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/cluster"
	"github.com/wpcdb/wpcdb/internal/etcdtest"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// rnode is a cluster node with replicas that can crash (its server closed
// at once, its lease left to expire, its databases closed) and restart
// from its folder at the same address.
type rnode struct {
	t        *testing.T
	ep, id   string
	dir      string
	addr     string
	db       *wpcdb.DB
	m        *cluster.Node
	reps     *cluster.Replicas
	srv      *server.Server
	done     chan error
	conn     *grpc.ClientConn
	cli      pb.WPCDBServiceClient
	up       bool
	stopOnce sync.Once

	compactEntries, keepEntries int // ReplicaOptions (0: the defaults)
}

// startRNode starts node id with its log compacted as ReplicaOptions'
// CompactEntries and KeepEntries say (0, 0: the defaults), and crashes it
// at the test's end if it is up.
func startRNode(t *testing.T, ep, id string, compactEntries, keepEntries int) *rnode {
	n := &rnode{t: t, ep: ep, id: id, dir: t.TempDir(), addr: "127.0.0.1:0", compactEntries: compactEntries, keepEntries: keepEntries}
	n.start()
	t.Cleanup(func() {
		if n.up {
			n.crash()
		}
	})
	return n
}

func (n *rnode) start() {
	t := n.t
	t.Helper()
	var err error
	if n.db, err = wpcdb.Open(filepath.Join(n.dir, "data"), nil); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	n.addr = lis.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n.m, err = cluster.Join(ctx, cluster.Options{Endpoints: []string{n.ep}, ShardTimeout: 20 * time.Second}, n.id, n.addr, 2); err != nil {
		t.Fatal(err)
	}
	if n.reps, err = cluster.OpenReplicas(n.m, filepath.Join(n.dir, "raft"), cluster.ReplicaOptions{DB: n.db, CompactEntries: n.compactEntries, KeepEntries: n.keepEntries, Logger: testLogger(n.id)}); err != nil {
		t.Fatal(err)
	}
	opts := &server.Options{
		Wrap: func(local pb.WPCDBServiceServer) pb.WPCDBServiceServer {
			n.reps.SetLocal(local)
			return cluster.NewRouter(n.m.Client, local, n.reps)
		},
		Register: n.reps.Register,
	}
	if n.srv, err = server.New(n.db, opts); err != nil {
		t.Fatal(err)
	}
	n.done = make(chan error, 1)
	go func() { n.done <- n.srv.Serve(lis) }()
	n.reps.Start()
	if n.conn, err = grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	n.cli = pb.NewWPCDBServiceClient(n.conn)
	n.up = true
}

// crash stops the node as a kill would, as far as a process can stop a
// part of itself: connections close at once, in-flight calls fail, the
// lease is not revoked (it expires), nothing more is written.
func (n *rnode) crash() {
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	n.srv.Stop(expired)
	<-n.done
	n.conn.Close()
	n.reps.Close()
	n.m.Client.Close()
	n.db.Close()
	if n.up { // (a caller may have marked it down under its own lock)
		n.up = false
	}
}

// waitCaughtUp waits (at most 30 s) until every live replica of every
// shard of m has applied everything its shard committed.
func waitCaughtUp(t *testing.T, m cluster.ShardMap, nodes []*rnode) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		var state []string
		for k := range m.Shards {
			name := cluster.ShardName(m.Name, k)
			var commit uint64
			var sts []cluster.GroupStatus
			for _, n := range nodes {
				if !n.up {
					continue
				}
				st, found := n.reps.Status(name)
				if !found {
					ok = false
					continue
				}
				commit = max(commit, st.Commit)
				sts = append(sts, st)
				state = append(state, fmt.Sprintf("%s@%s %+v", name, n.id, st))
			}
			for _, st := range sts {
				if st.Applied != commit || st.Last != commit {
					ok = false
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not caught up within 30 s: %v", state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicatedIngestSurvivesACrash: a collection of 2 shards × 3
// replicas over three nodes. During an ingest (through the two other
// nodes) the leader of shard 0 crashes: every batch is acknowledged (the
// routers retry at the new leader), every acknowledged item is there and
// searches answer throughout, with the ids and float64 scores of one
// node holding the same items. The crashed node restarts and catches up
// from the log; deletes and attribute updates replicate; finally the two
// other nodes crash and the restarted one, alone, answers as one node.
func TestReplicatedIngestSurvivesACrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ep := etcdtest.Start(t)
	nodes := []*rnode{startRNode(t, ep, "n1", 0, 0), startRNode(t, ep, "n2", 0, 0), startRNode(t, ep, "n3", 0, 0)}
	one := startNode(t, "", "", 0)
	for _, n := range nodes {
		waitView(t, n.m.Client, "three nodes", func(v *cluster.View) bool { return len(v.Nodes()) == 3 })
	}
	const dim = 6
	cfg := pbconv.ConfigToPB(wpcdb.CollectionConfig{Dim: dim}.WithDefaults())
	if _, err := nodes[0].m.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "r", Config: cfg}, 2, cluster.MaxReplicas+1); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("8 replicas: %v, want InvalidArgument", err)
	}
	if _, err := nodes[0].m.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "r", Config: cfg}, 2, 4); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("4 replicas on 3 nodes: %v, want FailedPrecondition", err)
	}
	if _, err := nodes[0].m.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "r", Config: cfg}, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := one.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "r", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	elected := func(v *cluster.View) bool {
		m, ok := v.Collection("r")
		if !ok {
			return false
		}
		for _, s := range m.Shards {
			if s.Term == 0 {
				return false
			}
		}
		return true
	}
	for _, n := range nodes {
		waitView(t, n.m.Client, "leaders of r's shards", elected)
	}
	// A replica's local collection takes no import: its writes go
	// through the Raft group.
	if st, err := nodes[0].cli.Import(ctx, &pb.ImportRequest{Collection: cluster.ShardName("r", 0), Points: "p.npy"}); err == nil {
		if _, err = st.Recv(); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "replica of a shard") {
			t.Fatalf("import into a replica's collection: %v, want FailedPrecondition naming the replica", err)
		}
	}

	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	const batches, per = 30, 8
	items := make([]*pb.Item, batches*per)
	for i := range items {
		items[i] = &pb.Item{Id: fmt.Sprintf("it-%03d", i), Cloud: pbCloud(wpctest.RandomCloud(rng, 2+rng.IntN(6), dim, wpctest.Shape{})),
			Attrs: map[string]*structpb.Value{"g": structpb.NewNumberValue(float64(i % 4))}}
	}
	queries := make([]*pb.Cloud, 3)
	for i := range queries {
		queries[i] = pbCloud(wpctest.RandomCloud(rng, 3+rng.IntN(3), dim, wpctest.Shape{}))
	}
	upsert(t, ctx, one.cli, &pb.UpsertRequest{Collection: "r", Items: items})

	m0, _ := nodes[0].m.View().Collection("r")
	vi := slices.IndexFunc(nodes, func(n *rnode) bool { return n.id == m0.Shards[0].Leader })
	victim := nodes[vi]
	others := slices.Delete(slices.Clone(nodes), vi, vi+1)
	t.Logf("the leader of shard 0, %s (term %d), crashes after batch 10", victim.id, m0.Shards[0].Term)

	// The ingest, through the two other nodes in turn, one batch a call.
	acked := map[string]bool{}
	crashAt := make(chan struct{})
	var ingestErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range batches {
			if b == 10 {
				close(crashAt)
			}
			batch := items[b*per : (b+1)*per]
			var written uint32
			if b%3 == 2 { // an Upsert stream of one batch
				written, ingestErr = streamBatch(ctx, others[b%2].cli, &pb.UpsertRequest{Collection: "r", Items: batch})
			} else {
				var resp *pb.UpsertBatchResponse
				resp, ingestErr = others[b%2].cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "r", Items: batch})
				written = resp.GetWritten()
			}
			if ingestErr != nil {
				ingestErr = fmt.Errorf("batch %d: %w", b, ingestErr)
				return
			}
			if written != per {
				ingestErr = fmt.Errorf("batch %d: written %d, want %d", b, written, per)
				return
			}
			for _, it := range batch {
				acked[it.Id] = true
			}
		}
	}()
	<-crashAt
	victim.crash()
	// Searches answer while the leadership moves (the routers fall over
	// to another replica).
	for i := range 5 {
		if _, err := others[i%2].cli.Search(ctx, &pb.SearchRequest{Collection: "r", Query: queries[i%3], K: 5}); err != nil {
			t.Fatalf("search %d after the crash: %v", i, err)
		}
	}
	wg.Wait()
	if ingestErr != nil {
		t.Fatal(ingestErr)
	}
	if len(acked) != len(items) {
		t.Fatalf("%d items acknowledged, want %d", len(acked), len(items))
	}
	// Every shard took writes after the crash, so each has a live leader
	// that recorded itself; wait for both routers' views to have it.
	movedOn := func(v *cluster.View) bool {
		m, _ := v.Collection("r")
		return !slices.ContainsFunc(m.Shards, func(s cluster.Shard) bool { return s.Leader == victim.id })
	}
	for _, n := range others {
		waitView(t, n.m.Client, "leaders other than "+victim.id, movedOn)
	}
	m1, _ := others[0].m.View().Collection("r")
	if m1.Shards[0].Epoch <= m0.Shards[0].Epoch || m1.Shards[0].Term <= m0.Shards[0].Term {
		t.Fatalf("shard 0 after the crash: %+v, was %+v", m1.Shards[0], m0.Shards[0])
	}
	t.Logf("shard 0's leader moved to %s (term %d, epoch %d)", m1.Shards[0].Leader, m1.Shards[0].Term, m1.Shards[0].Epoch)

	// Every acknowledged item is there, as written.
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.Id)
	}
	// checkAll compares reads through cli with one node's; strong reads
	// too when withStrong.
	checkAll := func(stage string, cli pb.WPCDBServiceClient, withStrong bool) {
		t.Helper()
		want, err := one.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "r", Ids: ids})
		if err != nil {
			t.Fatal(err)
		}
		got, err := cli.GetMany(ctx, &pb.GetManyRequest{Collection: "r", Ids: ids})
		if err != nil || !proto.Equal(got, want) {
			t.Fatalf("%s: GetMany: %d items, missing %v (%v); want %d items, missing %v", stage, len(got.GetItems()), got.GetMissing(), err, len(want.Items), want.Missing)
		}
		strong := pb.Consistency_CONSISTENCY_STRONG
		if !withStrong {
			strong = pb.Consistency_CONSISTENCY_UNSPECIFIED
		}
		if got, err := cli.GetMany(ctx, &pb.GetManyRequest{Collection: "r", Ids: ids, Consistency: strong}); err != nil || !proto.Equal(got, want) {
			t.Fatalf("%s: strong GetMany: %d items, missing %v (%v); want %d items, missing %v", stage, len(got.GetItems()), got.GetMissing(), err, len(want.Items), want.Missing)
		}
		for qi, q := range queries {
			for _, req := range []*pb.SearchRequest{{K: 10}, {K: 6, Exact: true, WithAttrs: true}, {K: 4, Offset: 3, Filter: "g = 1"}, {K: 8, Consistency: strong}} {
				req.Collection, req.Query = "r", q
				want, err := one.cli.Search(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := cli.Search(ctx, req)
				if err != nil || len(want.Hits) == 0 || !equalHits(got.Hits, want.Hits) {
					t.Fatalf("%s: query %d %v: %v %v, want %v", stage, qi, req, got.GetHits(), err, want.Hits)
				}
			}
		}
		wc, _ := one.cli.Count(ctx, &pb.CountRequest{Collection: "r"})
		gc, err := cli.Count(ctx, &pb.CountRequest{Collection: "r"})
		if err != nil || gc.Count != wc.Count {
			t.Fatalf("%s: count %v %v, want %d", stage, gc, err, wc.Count)
		}
	}
	checkAll("after the crash", others[1].cli, true)
	// Right after an acknowledged write, a strong read through another
	// node sees it.
	for i := range 3 {
		it := proto.CloneOf(items[i])
		it.Attrs["g"] = structpb.NewNumberValue(float64(100 + i))
		if _, err := others[0].cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "r", Items: []*pb.Item{it}}); err != nil {
			t.Fatal(err)
		}
		if _, err := one.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "r", Items: []*pb.Item{it}}); err != nil {
			t.Fatal(err)
		}
		got, err := others[1].cli.Get(ctx, &pb.GetRequest{Collection: "r", Id: it.Id, Consistency: pb.Consistency_CONSISTENCY_STRONG})
		if err != nil || !proto.Equal(got.GetItem().GetAttrs()["g"], it.Attrs["g"]) {
			t.Fatalf("strong get of %s right after its write: %v %v", it.Id, got, err)
		}
	}

	// An invalid item refuses the batch with one node's error and writes
	// nothing; with skip_invalid the others are written.
	bad := &pb.Item{Id: "bad", Cloud: &pb.Cloud{Dim: dim, Weights: []float32{1}, Points: make([]float32, dim+1)}}
	fresh := []*pb.Item{proto.CloneOf(items[0]), bad, proto.CloneOf(items[1])}
	fresh[0].Id, fresh[2].Id = "fresh-0", "fresh-2"
	_, err := others[0].cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "r", Items: fresh})
	_, werr := one.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "r", Items: fresh})
	if st, wst := status.Convert(err), status.Convert(werr); wst.Code() != codes.InvalidArgument || !proto.Equal(st.Proto(), wst.Proto()) {
		t.Fatalf("invalid item: %v, want %v", st.Proto(), wst.Proto())
	}
	got2, err := others[1].cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "r", Items: fresh, SkipInvalid: true})
	want2, werr := one.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "r", Items: fresh, SkipInvalid: true})
	if err != nil || werr != nil || !proto.Equal(got2, want2) || got2.Written != 2 {
		t.Fatalf("skip invalid: %v %v, want %v %v", got2, err, want2, werr)
	}

	// The crashed node restarts and catches up from the log.
	victim.start()
	waitView(t, others[0].m.Client, victim.id+" back", func(v *cluster.View) bool { _, ok := v.Node(victim.id); return ok })
	waitCaughtUp(t, m1, nodes)
	for k := range m1.Shards {
		name := cluster.ShardName("r", k)
		want, err := others[0].cli.Count(ctx, &pb.CountRequest{Collection: name})
		if err != nil {
			t.Fatal(err)
		}
		got, err := victim.cli.Count(ctx, &pb.CountRequest{Collection: name})
		if err != nil || got.Count != want.Count {
			t.Fatalf("%s on the restarted node: count %v %v, want %d", name, got, err, want.Count)
		}
	}

	// Deletes and attribute updates replicate.
	del := &pb.DeleteRequest{Collection: "r", Ids: []string{"it-003", "it-100", "fresh-2", "absent"}}
	gd, err := victim.cli.Delete(ctx, del)
	wd, werr := one.cli.Delete(ctx, del)
	if err != nil || werr != nil || gd.Deleted != wd.Deleted || wd.Deleted != 3 {
		t.Fatalf("delete: %v %v, want %v", gd, err, wd)
	}
	ua := &pb.UpdateAttrsRequest{Collection: "r", Id: "it-005", Set: map[string]*structpb.Value{"g": structpb.NewNumberValue(1)}}
	gu, err := others[0].cli.UpdateAttrs(ctx, ua)
	wu, werr := one.cli.UpdateAttrs(ctx, ua)
	if err != nil || werr != nil || !proto.Equal(gu, wu) {
		t.Fatalf("update attrs: %v %v, want %v", gu, err, wu)
	}
	if _, err := others[1].cli.UpdateAttrs(ctx, &pb.UpdateAttrsRequest{Collection: "r", Id: "absent", Set: ua.Set}); status.Code(err) != codes.NotFound {
		t.Fatalf("update attrs of an absent item: %v, want NotFound", err)
	}
	checkAll("after the restart", others[0].cli, true)
	waitCaughtUp(t, m1, nodes)
	// The replicas publish their applied indexes: the views, and the
	// status, show no lag.
	waitView(t, others[1].m.Client, "equal applied indexes", func(v *cluster.View) bool {
		for k, s := range m1.Shards {
			var first uint64
			for i, id := range s.Replicas {
				a, ok := v.Applied(id, cluster.ShardName("r", k))
				if !ok || a == 0 || (i > 0 && a != first) {
					return false
				}
				first = a
			}
		}
		return true
	})
	var st bytes.Buffer
	cluster.WriteStatus(&st, others[1].m.View())
	for _, line := range strings.Split(st.String(), "\n") {
		if f := strings.Fields(line); len(f) == 8 && f[0] == "r" && (f[6] != "0" || f[7] != "ok") {
			t.Fatalf("status after catching up: %q, want lag 0 and ok:\n%s", line, st.String())
		}
	}
	t.Logf("status:\n%s", st.String())
	if !strings.Contains(st.String(), "LAG") {
		t.Fatalf("status without LAG:\n%s", st.String())
	}

	// A replicated collection dropped: every replica's shard collection
	// and Raft group go. (Through the restarted node: the others may
	// take up to their reconnect backoff to reach it again.)
	if _, err := victim.m.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "d", Config: cfg}, 1, 3); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitView(t, n.m.Client, "d's leader", func(v *cluster.View) bool { m, ok := v.Collection("d"); return ok && m.Shards[0].Term > 0 })
	}
	// An Upsert stream's end ends the load on every replica, as on one
	// node: with 210 items (over firststage.MinItems) each calibrates.
	drng := wpctest.NewRand(seed + 1)
	ditems := make([]*pb.Item, 210)
	for i := range ditems {
		ditems[i] = &pb.Item{Id: fmt.Sprintf("d-%03d", i), Cloud: pbCloud(wpctest.RandomCloud(drng, 2+drng.IntN(4), dim, wpctest.Shape{}))}
	}
	if n := upsert(t, ctx, victim.cli, &pb.UpsertRequest{Collection: "d", Items: ditems[:100]}, &pb.UpsertRequest{Items: ditems[100:]}); n != len(ditems) {
		t.Fatalf("upsert into d: %d written", n)
	}
	for _, n := range nodes {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			d, err := n.cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: "d.s0"})
			if err == nil && d.Collection.GetCount() == uint64(len(ditems)) && d.Collection.GetIndex().GetRecall() > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("d.s0 on %s: %v %v; want %d items, calibrated", n.id, d, err, len(ditems))
			}
		}
	}
	if _, err := victim.cli.DropCollection(ctx, &pb.DropCollectionRequest{Name: "d"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitView(t, n.m.Client, "d dropped", func(v *cluster.View) bool { _, ok := v.Collection("d"); return !ok })
		if _, err := n.cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: "d.s0"}); status.Code(err) != codes.NotFound {
			t.Fatalf("d.s0 on %s after the drop: %v", n.id, err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, ok := n.reps.Status("d.s0"); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("d.s0's Raft group still runs on %s 10 s after the drop", n.id)
			}
		}
	}

	// The two others crash: the restarted node alone answers as one node.
	for _, n := range others {
		n.crash()
	}
	checkAll("on the restarted node alone", victim.cli, false)
	// Without a majority a strong read cannot be served: it fails (as
	// Unavailable, or at its deadline) while the default one answers.
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = victim.cli.Search(sctx, &pb.SearchRequest{Collection: "r", Query: queries[0], Consistency: pb.Consistency_CONSISTENCY_STRONG})
	scancel()
	if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
		t.Fatalf("strong search without a majority: %v, want Unavailable or DeadlineExceeded", err)
	}
	if _, err := victim.cli.Search(ctx, &pb.SearchRequest{Collection: "r", Query: queries[0]}); err != nil {
		t.Fatalf("search without a majority: %v", err)
	}
}

// streamBatch sends one batch on an Upsert stream and ends it.
func streamBatch(ctx context.Context, cli pb.WPCDBServiceClient, req *pb.UpsertRequest) (uint32, error) {
	stream, err := cli.Upsert(ctx)
	if err != nil {
		return 0, err
	}
	if err := stream.Send(req); err != nil {
		return 0, err
	}
	ack, err := stream.Recv()
	if err != nil {
		return 0, err
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		return 0, fmt.Errorf("end of upsert: %v", err)
	}
	return ack.Written, nil
}

func testLogger(id string) *slog.Logger {
	if os.Getenv("WPCDB_CLUSTER_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id)
}
