package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
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
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/etcdtest"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// node is a wpcdb server on a loopback port; in a cluster when endpoint
// is set.
type node struct {
	cli  pb.WPCDBServiceClient
	m    *cluster.Node
	srv  *server.Server
	done chan error
	// importDir is the server's import directory.
	importDir string
}

func startNode(t *testing.T, endpoint, id string, ttl int64, mods ...func(*server.Options)) *node {
	t.Helper()
	db, err := wpcdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{done: make(chan error, 1), importDir: t.TempDir()}
	opts := &server.Options{ImportRoot: n.importDir}
	for _, f := range mods {
		f(opts)
	}
	if endpoint != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.m, err = cluster.Join(ctx, cluster.Options{Endpoints: []string{endpoint}, ShardTimeout: 20 * time.Second}, id, lis.Addr().String(), ttl)
		if err != nil {
			t.Fatal(err)
		}
		var router *cluster.Router
		opts.Wrap = func(local pb.WPCDBServiceServer) pb.WPCDBServiceServer {
			router = cluster.NewRouter(n.m.Client, local, nil)
			return router
		}
		opts.ImportTo = func(ctx context.Context, name string) (ingest.Importer, error) { return router.Importer(ctx, name) }
	}
	if n.srv, err = server.New(db, opts); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- n.srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	n.cli = pb.NewWPCDBServiceClient(conn)
	t.Cleanup(func() {
		conn.Close()
		n.stop(t)
		if n.m != nil {
			n.m.Close()
		}
		db.Close()
	})
	return n
}

func (n *node) stop(t *testing.T) {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.srv.Stop(ctx)
	if err := <-n.done; err != nil {
		t.Errorf("serve: %v", err)
	}
	n.srv = nil
}

// startThree starts an etcd, three cluster nodes (n1–n3, each seeing the
// others) and one plain node, for a test of at most 2 minutes (ctx).
func startThree(t *testing.T) (ctx context.Context, nodes []*node, one *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ep := etcdtest.Start(t)
	nodes = []*node{startNode(t, ep, "n1", 0), startNode(t, ep, "n2", 0), startNode(t, ep, "n3", 0)}
	one = startNode(t, "", "", 0)
	for _, n := range nodes {
		waitView(t, n.m.Client, "three nodes", func(v *cluster.View) bool { return len(v.Nodes()) == 3 })
	}
	return ctx, nodes, one
}

// waitView waits (at most 20 s) until cond holds on c's view.
func waitView(t *testing.T, c *cluster.Client, what string, cond func(v *cluster.View) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		ch := c.View().Changed()
		if cond(c.View()) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			var b bytes.Buffer
			cluster.WriteStatus(&b, c.View())
			t.Fatalf("waiting for %s: not within 20 s; the view:\n%s", what, b.String())
		}
	}
}

func pbCloud(c wpctest.Cloud) *pb.Cloud {
	return &pb.Cloud{Dim: uint32(c.Dim), Weights: c.Weights, Points: c.Points}
}

const seed = 19

// TestClusterEqualsOneNode shards a collection over three nodes and checks
// every read against one plain node holding the same items: ids and exact
// scores of searches (with and without a filter, with an offset), gets,
// counts, a scroll, deletes and an invalid filter's error.
func TestClusterEqualsOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four servers")
	}
	ctx, nodes, one := startThree(t)

	const dim = 8
	cfg := pbconv.ConfigToPB(wpcdb.CollectionConfig{Dim: dim}.WithDefaults())
	// Through the service: one shard per live node.
	if _, err := nodes[0].cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "c", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if _, err := one.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "c", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitView(t, n.m.Client, "collection c", func(v *cluster.View) bool { _, ok := v.Collection("c"); return ok })
	}
	m, _ := nodes[2].m.View().Collection("c")
	owners := map[string]bool{}
	for _, s := range m.Shards {
		owners[s.Leader] = true
	}
	if len(m.Shards) != 3 || len(owners) != 3 {
		t.Fatalf("shard map %+v: want 3 shards on 3 nodes", m)
	}
	if _, err := nodes[1].cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "c", Config: cfg}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("creating c again: %v, want AlreadyExists", err)
	}

	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	items := make([]*pb.Item, 90)
	for i := range items {
		items[i] = &pb.Item{Id: fmt.Sprintf("item-%03d", i), Cloud: pbCloud(wpctest.RandomCloud(rng, 2+rng.IntN(7), dim, wpctest.Shape{})),
			Attrs: map[string]*structpb.Value{"g": structpb.NewNumberValue(float64(i % 3))}}
	}
	// Through node 2: a stream of two batches; through the plain node: one.
	ack := upsert(t, ctx, nodes[1].cli, &pb.UpsertRequest{Collection: "c", Items: items[:50]}, &pb.UpsertRequest{Items: items[50:]})
	if ack != len(items) {
		t.Fatalf("cluster acknowledged %d items, want %d", ack, len(items))
	}
	upsert(t, ctx, one.cli, &pb.UpsertRequest{Collection: "c", Items: items})

	queries := make([]*pb.Cloud, 4)
	for i := range queries {
		queries[i] = pbCloud(wpctest.RandomCloud(rng, 3+rng.IntN(4), dim, wpctest.Shape{}))
	}
	check := func(stage string) {
		t.Helper()
		for qi, q := range queries {
			for _, req := range []*pb.SearchRequest{
				{K: 10},
				{K: 7, Exact: true, WithAttrs: true},
				{K: 5, Offset: 4, Filter: "g = 1"},
				{K: 200, Filter: "g != 2"},
			} {
				req.Collection, req.Query = "c", q
				want, err := one.cli.Search(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := nodes[qi%3].cli.Search(ctx, req)
				if err != nil {
					t.Fatalf("%s: query %d %v: %v", stage, qi, req, err)
				}
				if len(want.Hits) == 0 || !equalHits(got.Hits, want.Hits) {
					t.Fatalf("%s: query %d (k %d offset %d filter %q): cluster hits\n%v\nwant (one node)\n%v", stage, qi, req.K, req.Offset, req.Filter, got.Hits, want.Hits)
				}
			}
		}
		for _, f := range []string{"", "g = 0"} {
			want, err := one.cli.Count(ctx, &pb.CountRequest{Collection: "c", Filter: f})
			if err != nil {
				t.Fatal(err)
			}
			got, err := nodes[2].cli.Count(ctx, &pb.CountRequest{Collection: "c", Filter: f})
			if err != nil || got.Count != want.Count {
				t.Fatalf("%s: count %q: %v %v, want %d", stage, f, got, err, want.Count)
			}
		}
		ids := []string{"item-000", "nope", "item-042", "item-089", "item-013"}
		want, err := one.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "c", Ids: ids})
		if err != nil {
			t.Fatal(err)
		}
		got, err := nodes[0].cli.GetMany(ctx, &pb.GetManyRequest{Collection: "c", Ids: ids})
		if err != nil || !proto.Equal(got, want) {
			t.Fatalf("%s: GetMany: %v %v, want %v", stage, got, err, want)
		}
		for _, id := range ids {
			want, werr := one.cli.Get(ctx, &pb.GetRequest{Collection: "c", Id: id})
			got, err := nodes[1].cli.Get(ctx, &pb.GetRequest{Collection: "c", Id: id})
			if status.Code(err) != status.Code(werr) || !proto.Equal(got, want) {
				t.Fatalf("%s: Get %s: %v %v, want %v %v", stage, id, got, err, want, werr)
			}
		}
		var scrolled, all []string
		for cur := ""; ; {
			page, err := nodes[2].cli.Scroll(ctx, &pb.ScrollRequest{Collection: "c", Cursor: cur, Limit: 7})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				scrolled = append(scrolled, it.Id)
			}
			if cur = page.NextCursor; cur == "" {
				break
			}
		}
		page, err := one.cli.Scroll(ctx, &pb.ScrollRequest{Collection: "c", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			all = append(all, it.Id)
		}
		slices.Sort(scrolled)
		slices.Sort(all)
		if !slices.Equal(scrolled, all) {
			t.Fatalf("%s: scroll gave %d ids %v, want %d", stage, len(scrolled), scrolled, len(all))
		}
	}
	check("after ingest")

	// Rerank, BatchSearch and UpdateAttrs answer as one node does.
	rr := &pb.RerankRequest{Collection: "c", Query: queries[1], Ids: []string{"item-007", "gone", "item-061", "item-030", "item-002"}, WithAttrs: true}
	wantRR, err := one.cli.Rerank(ctx, rr)
	if err != nil {
		t.Fatal(err)
	}
	gotRR, err := nodes[1].cli.Rerank(ctx, rr)
	if err != nil || !equalHits(gotRR.Hits, wantRR.Hits) || !slices.Equal(gotRR.Missing, wantRR.Missing) || len(wantRR.Hits) != 4 {
		t.Fatalf("rerank: %v %v, want %v", gotRR, err, wantRR)
	}
	bs := &pb.BatchSearchRequest{Collection: "c", Queries: queries[:2], K: 6, Filter: "g != 0"}
	wantBS, err := one.cli.BatchSearch(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	gotBS, err := nodes[2].cli.BatchSearch(ctx, bs)
	if err != nil || len(gotBS.Results) != 2 || !equalHits(gotBS.Results[0].Hits, wantBS.Results[0].Hits) || !equalHits(gotBS.Results[1].Hits, wantBS.Results[1].Hits) {
		t.Fatalf("batch search: %v %v, want %v", gotBS, err, wantBS)
	}
	ua := &pb.UpdateAttrsRequest{Collection: "c", Id: "item-033", Set: map[string]*structpb.Value{"tag": structpb.NewStringValue("x")}, Unset: []string{"g"}}
	wantUA, err := one.cli.UpdateAttrs(ctx, ua)
	if err != nil {
		t.Fatal(err)
	}
	if gotUA, err := nodes[0].cli.UpdateAttrs(ctx, ua); err != nil || !proto.Equal(gotUA, wantUA) {
		t.Fatalf("update attrs: %v %v, want %v", gotUA, err, wantUA)
	}

	del := []string{"item-001", "item-002", "item-050", "item-077", "absent"}
	want, err := one.cli.Delete(ctx, &pb.DeleteRequest{Collection: "c", Ids: del})
	if err != nil {
		t.Fatal(err)
	}
	got, err := nodes[2].cli.Delete(ctx, &pb.DeleteRequest{Collection: "c", Ids: del})
	if err != nil || got.Deleted != want.Deleted || want.Deleted != 4 {
		t.Fatalf("delete: %v %v, want %d (4)", got, err, want.Deleted)
	}
	check("after delete")

	d, err := nodes[0].cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: "c"})
	if err != nil || d.Collection.Count != uint64(len(items)-4) || d.Collection.Name != "c" {
		t.Fatalf("describe: %v %v", d, err)
	}
	// Bad requests fail as on one node: same code, same message.
	for _, req := range []*pb.SearchRequest{{Filter: "g = = 1"}, {K: -1}, {K: 9000, Offset: 2000}, {Offset: -3}} {
		req.Collection, req.Query = "c", queries[0]
		_, err = nodes[0].cli.Search(ctx, req)
		_, werr := one.cli.Search(ctx, req)
		if status.Code(werr) != codes.InvalidArgument || status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != status.Convert(werr).Message() {
			t.Fatalf("bad search %v: %v, want %v", req, err, werr)
		}
	}
	// What is not there yet says so.
	if _, err := nodes[1].cli.Calibrate(ctx, &pb.CalibrateRequest{Collection: "c"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("calibrate: %v, want Unimplemented", err)
	}
	// An invalid item refuses the whole batch, on every shard, with one
	// node's error; with skip_invalid it is skipped, named by its index.
	fresh := make([]*pb.Item, 8)
	for i := range fresh {
		fresh[i] = proto.CloneOf(items[i])
		fresh[i].Id = fmt.Sprintf("new-%d", i)
	}
	for _, bad := range []*pb.Item{
		{Id: "bad", Cloud: &pb.Cloud{Dim: dim, Weights: []float32{1}, Points: make([]float32, dim+1)}},
		{Id: "bad", Cloud: fresh[0].Cloud, Attrs: map[string]*structpb.Value{"": structpb.NewNumberValue(1)}},
		{Id: "", Cloud: fresh[0].Cloud},
	} {
		batch := append(slices.Clone(fresh[:6]), bad)
		_, err = nodes[0].cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "c", Items: batch})
		_, werr := one.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "c", Items: batch})
		if st, wst := status.Convert(err), status.Convert(werr); wst.Code() != codes.InvalidArgument || !proto.Equal(st.Proto(), wst.Proto()) {
			t.Fatalf("invalid item: %v, want %v", st.Proto(), wst.Proto())
		}
		if n, err := nodes[1].cli.Count(ctx, &pb.CountRequest{Collection: "c"}); err != nil || n.Count != uint64(len(items)-4) {
			t.Fatalf("after a refused batch: count %v %v, want %d", n, err, len(items)-4)
		}
	}
	bad := &pb.Item{Id: "bad", Cloud: &pb.Cloud{Dim: dim, Weights: []float32{1}, Points: make([]float32, dim+1)}}
	batch := []*pb.Item{fresh[6], bad, fresh[7]}
	got2, err := nodes[0].cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "c", Items: batch, SkipInvalid: true})
	want2, werr := one.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "c", Items: batch, SkipInvalid: true})
	if err != nil || werr != nil || !proto.Equal(got2, want2) || got2.Written != 2 {
		t.Fatalf("skip invalid: %v %v, want %v %v", got2, err, want2, werr)
	}

	// A node that stops serving (its lease still alive): a search refuses
	// the partial result and names the shard.
	nodes[2].stop(t)
	_, err = nodes[0].cli.Search(ctx, &pb.SearchRequest{Collection: "c", Query: queries[0]})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), `partial result refused: 1 of 3 shards failed: shard`) || !strings.Contains(st.Message(), `(node "n3")`) {
		t.Fatalf("search with a node down: %v", err)
	}

	// Drop removes the catalog record and the shards.
	if _, err := nodes[0].cli.DropCollection(ctx, &pb.DropCollectionRequest{Name: "c"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("drop with a node down: %v, want Unavailable", err)
	}
	if _, ok := nodes[0].m.View().Collection("c"); ok {
		t.Fatal("c still in the catalog after drop")
	}
}

// equalHits compares ids and scores exactly (the same float64 bits).
func equalHits(a, b []*pb.Hit) bool {
	return slices.EqualFunc(a, b, func(x, y *pb.Hit) bool { return proto.Equal(x, y) })
}

func upsert(t *testing.T, ctx context.Context, cli pb.WPCDBServiceClient, reqs ...*pb.UpsertRequest) int {
	t.Helper()
	stream, err := cli.Upsert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
		ack, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		n += int(ack.Written)
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of upsert: %v", err)
	}
	return n
}

// TestLeaseExpiry: a node that stops renewing its lease (a crash: no
// revoke) leaves every other node's view and the status once the lease
// expires; a node that closes leaves at once.
func TestLeaseExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ep := etcdtest.Start(t)
	opts := cluster.Options{Endpoints: []string{ep}}
	a, err := cluster.Join(ctx, opts, "a", "127.0.0.1:7001", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := cluster.Join(ctx, opts, "b", "127.0.0.1:7002", 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Join(ctx, opts, "c", "127.0.0.1:7003", 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Join(ctx, opts, "a", "127.0.0.1:7009", 1); err == nil || !strings.Contains(err.Error(), "registered by a live node at 127.0.0.1:7001") {
		t.Fatalf("a second node a: %v", err)
	}
	waitView(t, a.Client, "three nodes", func(v *cluster.View) bool { return len(v.Nodes()) == 3 })
	// Refused before any node is called (none listens at these addresses).
	for _, tc := range []struct {
		name   string
		shards int
		msg    string
	}{{"x", cluster.MaxShards + 1, "shards must be between 1 and 256, got 257"}, {"x", -1, "got -1"}, {"x.s1", 1, "may not end in .s<digits>"}, {"-x", 1, "not allowed"}} {
		_, err := a.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: tc.name, Config: &pb.CollectionConfig{Dim: 2}}, tc.shards, 1)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("create %q with %d shards: %v, want %q", tc.name, tc.shards, err, tc.msg)
		}
	}
	var buf bytes.Buffer
	cluster.WriteStatus(&buf, a.View())
	if !strings.Contains(buf.String(), "b     127.0.0.1:7002") {
		t.Fatalf("status before: %s", buf.String())
	}
	b.Client.Close() // stops the keep-alive; the lease is not revoked
	waitView(t, a.Client, "b's lease to expire", func(v *cluster.View) bool { _, ok := v.Node("b"); return !ok })
	c.Close() // revokes its 60 s lease
	waitView(t, a.Client, "c to leave", func(v *cluster.View) bool { _, ok := v.Node("c"); return !ok })
	buf.Reset()
	cluster.WriteStatus(&buf, a.View())
	if s := buf.String(); strings.Contains(s, "7002") || strings.Contains(s, "7003") || !strings.Contains(s, "127.0.0.1:7001") {
		t.Fatalf("status after: %s", s)
	}
}

func init() { log.SetOutput(io.Discard) }
