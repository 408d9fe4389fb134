package server_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// testServer is a server on a free loopback port over a fresh database,
// with a client connected to it.
type testServer struct {
	addr string
	db   *wpcdb.DB
	srv  *server.Server
	cli  pb.WPCDBServiceClient
	conn *grpc.ClientConn
}

func startServer(t *testing.T, opts *server.Options) *testServer {
	t.Helper()
	db, err := wpcdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: lis.Addr().String(), db: db, srv: srv, cli: pb.NewWPCDBServiceClient(conn), conn: conn}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		db.Close()
	})
	return ts
}

var shape = bench.Synth{Dim: 16, MinPoints: 2, MaxPoints: 12, Topics: 8}

func createPB(t *testing.T, cli pb.WPCDBServiceClient, ctx context.Context, name string, cfg wpcdb.CollectionConfig) {
	t.Helper()
	if _, err := cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: name, Config: pbconv.ConfigToPB(cfg)}); err != nil {
		t.Fatal(err)
	}
}

// upsertPB sends batches on one stream and returns the acks, or the
// stream's error.
func upsertPB(ctx context.Context, cli pb.WPCDBServiceClient, reqs ...*pb.UpsertRequest) ([]*pb.UpsertResponse, error) {
	stream, err := cli.Upsert(ctx)
	if err != nil {
		return nil, err
	}
	var acks []*pb.UpsertResponse
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			break // the error comes with Recv
		}
		ack, err := stream.Recv()
		if err != nil {
			return acks, err
		}
		acks = append(acks, ack)
	}
	if err := stream.CloseSend(); err != nil {
		return acks, err
	}
	if _, err := stream.Recv(); err != io.EOF {
		return acks, err
	}
	return acks, nil
}

func itemsPB(t *testing.T, items []wpcdb.Item) []*pb.Item {
	t.Helper()
	out := make([]*pb.Item, len(items))
	for i, it := range items {
		p, err := pbconv.ItemToPB(it)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// TestIngestThenSearchEqualsEmbedded ingests the same items over gRPC and
// embedded, and checks that every read gives the same answer.
func TestIngestThenSearchEqualsEmbedded(t *testing.T) {
	ctx := context.Background()
	snapRoot := t.TempDir()
	ts := startServer(t, &server.Options{SnapshotRoot: snapRoot})
	emb, err := wpcdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	synth := bench.NewSynth(shape, 11)
	for _, score := range []string{"inner", "mmd"} {
		cfg := wpcdb.CollectionConfig{Dim: shape.Dim}
		cfg.Features.Dim = 256
		if score == "mmd" {
			cfg.Similarity.Score = 2
		}
		name := "c-" + score
		createPB(t, ts.cli, ctx, name, cfg)
		ec, err := emb.CreateCollection(ctx, name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		const n, batch = 1200, 250
		var reqs []*pb.UpsertRequest
		for lo := 0; lo < n; lo += batch {
			var items []wpcdb.Item
			for i := lo; i < min(lo+batch, n); i++ {
				items = append(items, synth.Item(i))
			}
			if err := ec.Upsert(ctx, items); err != nil {
				t.Fatal(err)
			}
			r := &pb.UpsertRequest{Items: itemsPB(t, items)}
			if lo == 0 {
				r.Collection = name
			}
			reqs = append(reqs, r)
		}
		acks, err := upsertPB(ctx, ts.cli, reqs...)
		if err != nil || len(acks) != len(reqs) {
			t.Fatalf("upsert: %d acks, %v", len(acks), err)
		}
		for i, a := range acks {
			if a.Batch != uint64(i) || int(a.Written) != len(reqs[i].Items) {
				t.Fatalf("ack %d: %v", i, a)
			}
		}
		desc, err := ts.cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: name})
		if err != nil || desc.Collection.Count != n {
			t.Fatalf("describe: %v %v", desc, err)
		}
		info, err := pbconv.InfoFromPB(desc.Collection)
		if err != nil || fmt.Sprint(info.Config) != fmt.Sprint(ec.Config()) {
			t.Fatalf("config over the wire %+v, embedded %+v (%v)", info.Config, ec.Config(), err)
		}
		var queries []*pb.Cloud
		for j := 0; j < 8; j++ {
			q := synth.Query(j, 6)
			queries = append(queries, pbconv.CloudToPB(q))
			for _, exact := range []bool{false, true} {
				want, err := ec.Search(ctx, q, wpcdb.SearchOptions{K: 10, Exact: exact})
				if err != nil {
					t.Fatal(err)
				}
				got, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: name, Query: pbconv.CloudToPB(q), K: 10, Exact: exact})
				if err != nil {
					t.Fatal(err)
				}
				sameHits(t, fmt.Sprintf("%s query %d exact %v", name, j, exact), hitsFromPB(t, got.Hits), want.Hits)
				if got.Stats.Plan != want.Stats.Plan || got.ScoreMode != pbconv.ScoreModeToPB(ec.Config().Similarity.Score) {
					t.Errorf("plan %q want %q, score mode %v", got.Stats.Plan, want.Stats.Plan, got.ScoreMode)
				}
			}
			// The same filtered search over the wire and embedded.
			const filter = `year >= 2005 AND topic != "t3"`
			fwant, err := ec.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: filter})
			if err != nil {
				t.Fatal(err)
			}
			fgot, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: name, Query: pbconv.CloudToPB(q), K: 10, Filter: filter})
			if err != nil {
				t.Fatal(err)
			}
			sameHits(t, fmt.Sprintf("%s query %d filtered", name, j), hitsFromPB(t, fgot.Hits), fwant.Hits)
			ids := []string{"item-3", "item-700", "item-42"}
			want, err := ec.Rerank(ctx, q, ids)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ts.cli.Rerank(ctx, &pb.RerankRequest{Collection: name, Query: pbconv.CloudToPB(q), Ids: ids})
			if err != nil {
				t.Fatal(err)
			}
			sameHits(t, "rerank", hitsFromPB(t, got.Hits), want.Hits)
		}
		bres, err := ts.cli.BatchSearch(ctx, &pb.BatchSearchRequest{Collection: name, Queries: queries, K: 5})
		if err != nil || len(bres.Results) != len(queries) {
			t.Fatalf("batch search: %v", err)
		}
		for j, r := range bres.Results {
			want, _ := ec.Search(ctx, cloudFromPB(t, queries[j]), wpcdb.SearchOptions{K: 5})
			sameHits(t, "batch", hitsFromPB(t, r.Hits), want.Hits)
		}
		got, err := ts.cli.Get(ctx, &pb.GetRequest{Collection: name, Id: "item-77"})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ec.Get(ctx, "item-77")
		it, err := pbconv.ItemFromPB(got.Item)
		if err != nil || it.ID != want.ID || fmt.Sprint(it.Cloud) != fmt.Sprint(want.Cloud) || fmt.Sprint(it.Attrs) != fmt.Sprint(want.Attrs) {
			t.Fatalf("get: %v\n got %+v\nwant %+v", err, it, want)
		}
		del, err := ts.cli.Delete(ctx, &pb.DeleteRequest{Collection: name, Ids: []string{"item-1", "item-2", "nope"}})
		if err != nil || del.Deleted != 2 {
			t.Fatalf("delete: %v %v", del, err)
		}
	}
	list, err := ts.cli.ListCollections(ctx, &pb.ListCollectionsRequest{})
	if err != nil || len(list.Collections) != 2 || list.Collections[0].Name != "c-inner" || list.Collections[1].Count != 1198 {
		t.Fatalf("list: %v %v", list, err)
	}
	snap := filepath.Join(snapRoot, "snap")
	if res, err := ts.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: "snap"}); err != nil || res.Dir != snap {
		t.Fatal(res, err)
	}
	if _, err := ts.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: "snap"}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("snapshot to an existing dir: %v", err)
	}
	if ls, err := ts.cli.ListSnapshots(ctx, &pb.ListSnapshotsRequest{}); err != nil || len(ls.Snapshots) != 1 || ls.Snapshots[0].Name != "snap" ||
		ls.Snapshots[0].Dir != snap || ls.Snapshots[0].Bytes == 0 || time.Since(time.UnixMilli(ls.Snapshots[0].CreatedUnixMs)) > time.Hour {
		t.Errorf("list snapshots: %v %v", ls, err)
	}
	sdb, err := wpcdb.Open(snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if c, err := sdb.Collection("c-mmd"); err != nil || c.Count() != 1198 {
		t.Errorf("snapshot: %v", err)
	}
	if _, err := ts.cli.DropCollection(ctx, &pb.DropCollectionRequest{Name: "c-mmd"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: "c-mmd"}); status.Code(err) != codes.NotFound {
		t.Errorf("describe dropped: %v", err)
	}
}

func sameHits(t *testing.T, what string, got, want []wpcdb.Hit) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d hits, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Score != want[i].Score || got[i].Distance != want[i].Distance {
			t.Fatalf("%s: hit %d is %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func TestAuth(t *testing.T) {
	// A service added through Register (cluster mode's ReplicationService)
	// is behind the same token.
	ts := startServer(t, &server.Options{Token: "s3cret", Register: func(s grpc.ServiceRegistrar) {
		pb.RegisterReplicationServiceServer(s, pb.UnimplementedReplicationServiceServer{})
	}})
	bearer := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		code codes.Code
	}{
		{"no token", context.Background(), codes.Unauthenticated},
		{"wrong token", bearer("s3cre"), codes.Unauthenticated},
		{"longer token", bearer("s3cret!"), codes.Unauthenticated},
		{"wrong scheme", metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic s3cret"), codes.Unauthenticated},
		{"right token", bearer("s3cret"), codes.OK},
	} {
		_, err := ts.cli.ListCollections(tc.ctx, &pb.ListCollectionsRequest{})
		if status.Code(err) != tc.code {
			t.Errorf("%s: ListCollections: %v, want %v", tc.name, err, tc.code)
		}
		_, err = pb.NewReplicationServiceClient(ts.conn).Step(tc.ctx, &pb.StepRequest{})
		if want := cmp.Or(tc.code, codes.Unimplemented); status.Code(err) != want {
			t.Errorf("%s: ReplicationService.Step: %v, want %v", tc.name, err, want)
		}
		if tc.code == codes.OK {
			continue
		}
		_, err = ts.cli.CreateCollection(tc.ctx, &pb.CreateCollectionRequest{Name: "c", Config: &pb.CollectionConfig{Dim: 4}})
		if status.Code(err) != tc.code {
			t.Errorf("%s: CreateCollection: %v, want %v", tc.name, err, tc.code)
		}
		_, err = upsertPB(tc.ctx, ts.cli, &pb.UpsertRequest{Collection: "c", Items: []*pb.Item{{Id: "a", Cloud: &pb.Cloud{Dim: 1, Points: []float32{1}}}}})
		if status.Code(err) != tc.code {
			t.Errorf("%s: Upsert: %v, want %v", tc.name, err, tc.code)
		}
	}
	if list, _ := ts.db.ListCollections(); len(list) != 0 {
		t.Errorf("refused requests wrote: %v", list)
	}
	// Health and reflection need no token.
	h, err := healthpb.NewHealthClient(ts.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: server.ServiceName})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", h, err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	resp, err := rs.Recv()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, " "), server.ServiceName) {
		t.Errorf("reflection lists %v", names)
	}
	rs.CloseSend()
}

// TestBadInputs checks each bad input's code and message, and that nothing
// of the request was written.
func TestBadInputs(t *testing.T) {
	ctx := context.Background()
	snapRoot := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(snapRoot, "link"))
	os.Symlink(filepath.Join(outside, "new"), filepath.Join(snapRoot, "dangling"))
	ts := startServer(t, &server.Options{MaxRecvBytes: 1 << 20, SnapshotRoot: snapRoot})
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 4, MaxPoints: 8})
	createPB(t, ts.cli, ctx, "other", wpcdb.CollectionConfig{Dim: 4})
	seed := []*pb.Item{{Id: "seed", Cloud: &pb.Cloud{Dim: 4, Weights: []float32{1}, Points: []float32{1, 2, 3, 4}}}}
	if _, err := upsertPB(ctx, ts.cli, &pb.UpsertRequest{Collection: "c", Items: seed}); err != nil {
		t.Fatal(err)
	}
	good := func(id string) *pb.Item {
		return &pb.Item{Id: id, Cloud: &pb.Cloud{Dim: 4, Weights: []float32{2, -1}, Points: []float32{1, 0, 0, 0, 0, 1, 0, 0}}}
	}
	cloud := func(dim uint32, w []float32, p ...float32) *pb.Cloud {
		return &pb.Cloud{Dim: dim, Weights: w, Points: p}
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	// upsertBad sends a good item then a bad one in one batch: the whole
	// batch must be refused.
	upsertBad := func(bad *pb.Item) func() error {
		return func() error {
			_, err := upsertPB(ctx, ts.cli, &pb.UpsertRequest{Collection: "c", Items: []*pb.Item{good("written?"), bad}})
			return err
		}
	}
	q := cloud(4, []float32{1}, 1, 1, 0, 0)
	search := func(r *pb.SearchRequest) func() error {
		return func() error {
			if r.Collection == "" {
				r.Collection = "c"
			}
			if r.Query == nil {
				r.Query = q
			}
			_, err := ts.cli.Search(ctx, r)
			return err
		}
	}
	create := func(name string, cfg *pb.CollectionConfig) func() error {
		return func() error {
			_, err := ts.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: name, Config: cfg})
			return err
		}
	}
	big := make([]float32, 300_000) // 1.2 MB of floats > 1 MiB
	for i := range big {
		big[i] = 1
	}
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		msg  string // a substring of the status message
	}{
		{"NaN point", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, []float32{1}, 1, nan, 0, 0)}), codes.InvalidArgument, `item 1 (id "x"): points[0][1]`},
		{"Inf weight", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, []float32{inf}, 1, 0, 0, 0)}), codes.InvalidArgument, "weights[0]"},
		{"wrong dim", upsertBad(&pb.Item{Id: "x", Cloud: cloud(3, []float32{1}, 1, 0, 0)}), codes.InvalidArgument, "dimension 3"},
		{"empty cloud", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, nil)}), codes.InvalidArgument, "no points"},
		{"missing cloud", upsertBad(&pb.Item{Id: "x"}), codes.InvalidArgument, "dim"},
		{"too many points", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, nil, make36()...)}), codes.InvalidArgument, "9 points"},
		{"query with too many points", func() error {
			_, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: "c", K: 1, Query: cloud(4, nil, make36()...)})
			return err
		}, codes.InvalidArgument, "query: 9 points exceeds the collection's maximum of 8"},
		{"rerank query with too many points", func() error {
			_, err := ts.cli.Rerank(ctx, &pb.RerankRequest{Collection: "c", Ids: []string{"seed"}, Query: cloud(4, nil, make36()...)})
			return err
		}, codes.InvalidArgument, "query: 9 points exceeds"},
		{"id with a newline", upsertBad(&pb.Item{Id: "a\nb", Cloud: cloud(4, nil, 1, 2, 3, 4)}), codes.InvalidArgument, "control character U+000A"},
		{"length mismatch", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, []float32{1, 1, 1}, 1, 0, 0, 0, 0, 1, 0, 0)}), codes.InvalidArgument, "weights"},
		{"ragged points", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, nil, 1, 0, 0, 0, 1)}), codes.InvalidArgument, "points"},
		{"zero point", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, nil, 0, 0, 0, 0)}), codes.InvalidArgument, "zero vector"},
		{"empty ID", upsertBad(&pb.Item{Id: "", Cloud: q}), codes.InvalidArgument, "id: must not be empty"},
		{"attr without value", upsertBad(&pb.Item{Id: "x", Cloud: q, Attrs: map[string]*structpb.Value{"color": {}}}), codes.InvalidArgument, "attrs.color"},
		{"nested list attr", upsertBad(&pb.Item{Id: "x", Cloud: q, Attrs: map[string]*structpb.Value{"tags": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewListValue(&structpb.ListValue{})}})}}), codes.InvalidArgument, "attrs.tags[0]: a list holds strings, numbers and booleans, not lists"},
		{"object attr", upsertBad(&pb.Item{Id: "x", Cloud: q, Attrs: map[string]*structpb.Value{"o": structpb.NewStructValue(&structpb.Struct{})}}), codes.InvalidArgument, "attrs.o: value must be a string, number, boolean, null or a list of those, got an object"},
		{"NaN attr", upsertBad(&pb.Item{Id: "x", Cloud: q, Attrs: map[string]*structpb.Value{"n": structpb.NewNumberValue(math.NaN())}}), codes.InvalidArgument, "attrs.n"},
		{"oversized message", upsertBad(&pb.Item{Id: "x", Cloud: cloud(4, nil, big...)}), codes.ResourceExhausted, "larger than max"},
		{"upsert unknown collection", func() error {
			_, err := upsertPB(ctx, ts.cli, &pb.UpsertRequest{Collection: "nope", Items: []*pb.Item{good("y")}})
			return err
		}, codes.NotFound, "collection not found"},
		{"upsert switches collection", func() error {
			_, err := upsertPB(ctx, ts.cli, &pb.UpsertRequest{Collection: "c", Items: []*pb.Item{}}, &pb.UpsertRequest{Collection: "other", Items: []*pb.Item{good("y")}})
			return err
		}, codes.InvalidArgument, "one collection"},
		{"unknown kernel", create("n1", &pb.CollectionConfig{Dim: 4, Kernel: "foo(1)"}), codes.InvalidArgument, "unknown kernel"},
		{"alpha zero", create("n2", &pb.CollectionConfig{Dim: 4, Kernel: "0*linear"}), codes.InvalidArgument, "α must be > 0"},
		{"alpha negative", create("n3", &pb.CollectionConfig{Dim: 4, Kernel: "-0.5*linear+gaussian(1)"}), codes.InvalidArgument, "α must be > 0"},
		{"sigma zero", create("n4", &pb.CollectionConfig{Dim: 4, Kernel: "gaussian(0)"}), codes.InvalidArgument, "σ must be > 0"},
		{"dim zero", create("n5", &pb.CollectionConfig{}), codes.InvalidArgument, "dim must be positive"},
		{"no config", create("n6", nil), codes.InvalidArgument, "config: missing"},
		{"unknown score mode", create("n7", &pb.CollectionConfig{Dim: 4, Score: 9}), codes.InvalidArgument, "score"},
		{"maxsim cosine", create("n8", &pb.CollectionConfig{Dim: 4, Kernel: "maxsim", Score: pb.ScoreMode_SCORE_MODE_COSINE}), codes.InvalidArgument, "maxsim"},
		{"bad name", create("a b", &pb.CollectionConfig{Dim: 4}), codes.InvalidArgument, "collection name"},
		{"duplicate collection", create("c", &pb.CollectionConfig{Dim: 4}), codes.AlreadyExists, "already exists"},
		{"negative offset", search(&pb.SearchRequest{K: 1, Offset: -1}), codes.InvalidArgument, "offset"},
		{"packed points both ways", search(&pb.SearchRequest{K: 1, Query: &pb.Cloud{Dim: 4, Points: []float32{1, 0, 0, 0}, PointsData: make([]byte, 16)}}), codes.InvalidArgument, "query: points, points_data: set one, not both"},
		{"k negative", search(&pb.SearchRequest{K: -3}), codes.InvalidArgument, "got -3"},
		{"huge k", search(&pb.SearchRequest{K: 10_001}), codes.InvalidArgument, "got 10001"},
		{"negative candidates", search(&pb.SearchRequest{K: 1, Candidates: -1}), codes.InvalidArgument, "candidates"},
		{"NaN query", search(&pb.SearchRequest{K: 1, Query: cloud(4, nil, 1, nan, 0, 0)}), codes.InvalidArgument, "query: points[0][1]"},
		{"query wrong dim", search(&pb.SearchRequest{K: 1, Query: cloud(2, nil, 1, 0)}), codes.InvalidArgument, "query"},
		{"search unknown collection", search(&pb.SearchRequest{Collection: "nope", K: 1}), codes.NotFound, `"nope"`},
		{"bad filter", search(&pb.SearchRequest{K: 1, Filter: `color = "red`}), codes.InvalidArgument, "filter"},
		{"get empty ID", func() error { _, err := ts.cli.Get(ctx, &pb.GetRequest{Collection: "c"}); return err }, codes.InvalidArgument, "id"},
		{"get unknown ID", func() error { _, err := ts.cli.Get(ctx, &pb.GetRequest{Collection: "c", Id: "nope"}); return err }, codes.NotFound, "not found"},
		{"rerank too many IDs", func() error {
			_, err := ts.cli.Rerank(ctx, &pb.RerankRequest{Collection: "c", Query: q, Ids: make([]string, 10_001)})
			return err
		}, codes.InvalidArgument, "ids: at most 10000"},
		{"scroll limit", func() error {
			_, err := ts.cli.Scroll(ctx, &pb.ScrollRequest{Collection: "c", Limit: 10_001})
			return err
		}, codes.InvalidArgument, "limit"},
		{"count bad filter", func() error {
			_, err := ts.cli.Count(ctx, &pb.CountRequest{Collection: "c", Filter: "x ="})
			return err
		}, codes.InvalidArgument, "filter"},
		{"update attrs of an unknown ID", func() error {
			_, err := ts.cli.UpdateAttrs(ctx, &pb.UpdateAttrsRequest{Collection: "c", Id: "nope", Unset: []string{"a"}})
			return err
		}, codes.NotFound, `"nope"`},
		{"get many, too many", func() error {
			_, err := ts.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "c", Ids: make([]string, 10_001)})
			return err
		}, codes.InvalidArgument, "ids: at most 10000"},
		{"describe no name", func() error { _, err := ts.cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{}); return err }, codes.InvalidArgument, "name is required"},
		{"drop unknown", func() error {
			_, err := ts.cli.DropCollection(ctx, &pb.DropCollectionRequest{Name: "nope"})
			return err
		}, codes.NotFound, "collection not found"},
		{"snapshot absolute path", func() error { _, err := ts.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: outside + "/x"}); return err }, codes.InvalidArgument, "must be a name"},
		{"snapshot nested path", func() error { _, err := ts.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: "link/x"}); return err }, codes.InvalidArgument, "must be a name"},
		{"snapshot parent", func() error { _, err := ts.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: ".."}); return err }, codes.InvalidArgument, "must be a name"},
		{"snapshot onto a symlink", func() error { _, err := ts.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: "link"}); return err }, codes.AlreadyExists, "file already exists"},
		{"snapshot onto a dangling symlink", func() error { _, err := ts.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: "dangling"}); return err }, codes.AlreadyExists, "file already exists"},
	} {
		err := tc.call()
		st := status.Convert(err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: got %v: %q; want %v containing %q", tc.name, st.Code(), st.Message(), tc.code, tc.msg)
		}
		// Nothing written: only the seed item, and only the two collections.
		if c, _ := ts.db.Collection("c"); c.Count() != 1 {
			t.Fatalf("%s: collection c has %d items", tc.name, c.Count())
		}
		if o, _ := ts.db.Collection("other"); o.Count() != 0 {
			t.Fatalf("%s: collection other has %d items", tc.name, o.Count())
		}
		if list, _ := ts.db.ListCollections(); len(list) != 2 {
			t.Fatalf("%s: %d collections", tc.name, len(list))
		}
	}
}

// make36 returns 9 points of dimension 4 (one over the collection's 8).
func make36() []float32 {
	p := make([]float32, 36)
	for i := range p {
		p[i] = float32(i + 1)
	}
	return p
}

// TestRefusedBatchDetail checks the InvalidItem detail of a refused batch,
// that batches acknowledged before it stay, and skip_invalid.
func TestRefusedBatchDetail(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, nil)
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	item := func(id string, p ...float32) *pb.Item { return &pb.Item{Id: id, Cloud: &pb.Cloud{Dim: 2, Points: p}} }
	acks, err := upsertPB(ctx, ts.cli,
		&pb.UpsertRequest{Collection: "c", Items: []*pb.Item{item("a", 1, 0), item("b", 0, 1)}},
		&pb.UpsertRequest{Items: []*pb.Item{item("c", 1, 1), item("d", 0, 0), item("e", 1, 2)}},
		&pb.UpsertRequest{Items: []*pb.Item{item("f", 1, 1)}})
	if len(acks) != 1 || acks[0].Written != 2 {
		t.Fatalf("acks %v", acks)
	}
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || len(st.Details()) != 1 {
		t.Fatalf("refused batch: %v %v", st, st.Details())
	}
	d, ok := st.Details()[0].(*pb.InvalidItem)
	if !ok || d.Index != 1 || d.Id != "d" || !strings.HasPrefix(d.Reason, "points[0]: zero vector") {
		t.Fatalf("detail %v", st.Details()[0])
	}
	if c, _ := ts.db.Collection("c"); c.Count() != 2 {
		t.Fatalf("count %d, want the first batch's 2", c.Count())
	}
	acks, err = upsertPB(ctx, ts.cli, &pb.UpsertRequest{Collection: "c", SkipInvalid: true,
		Items: []*pb.Item{item("c", 1, 1), item("d", 0, 0), {Id: "g", Cloud: &pb.Cloud{Dim: 2, Points: []float32{1, 1}}, Attrs: map[string]*structpb.Value{"x": {}}}, item("e", 1, 2)}})
	if err != nil || len(acks) != 1 || acks[0].Written != 2 || len(acks[0].Skipped) != 2 ||
		acks[0].Skipped[0].Index != 1 || acks[0].Skipped[1].Index != 2 || acks[0].Skipped[1].Id != "g" {
		t.Fatalf("skip invalid: %v %v", acks, err)
	}
}

// TestParallelClients runs clients upserting and searching at once (run
// under -race in CI).
func TestParallelClients(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	ts := startServer(t, &server.Options{Registerer: reg})
	cfg := wpcdb.CollectionConfig{Dim: shape.Dim}
	cfg.Features.Dim = 128
	createPB(t, ts.cli, ctx, "c", cfg)
	synth := bench.NewSynth(shape, 5)
	const clients, batches, per = 6, 5, 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for w := 0; w < clients; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			stream, err := ts.cli.Upsert(ctx)
			if err != nil {
				errs <- err
				return
			}
			for b := 0; b < batches; b++ {
				var items []wpcdb.Item
				for i := 0; i < per; i++ {
					items = append(items, synth.Item((w*batches+b)*per+i))
				}
				if err := stream.Send(&pb.UpsertRequest{Collection: "c", Items: itemsPB(t, items)}); err != nil {
					errs <- err
					return
				}
				if ack, err := stream.Recv(); err != nil || int(ack.Written) != per {
					errs <- fmt.Errorf("ack %v: %v", ack, err)
					return
				}
			}
			stream.CloseSend()
			if _, err := stream.Recv(); err != io.EOF {
				errs <- fmt.Errorf("end of stream: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				res, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: "c", Query: pbconv.CloudToPB(synth.Query(w*100+j, 5)), K: 5})
				if err != nil {
					errs <- err
					return
				}
				if len(res.Hits) > 5 {
					errs <- fmt.Errorf("%d hits", len(res.Hits))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c, _ := ts.db.Collection("c"); c.Count() != clients*batches*per {
		t.Fatalf("count %d, want %d", c.Count(), clients*batches*per)
	}
	// Metrics: requests per method, ingested items, collection sizes.
	found := gather(t, reg)
	for key, want := range map[string]float64{
		"grpc_server_handled_total,grpc_code=OK,grpc_method=Search,grpc_service=wpcdb.v1.WPCDBService,grpc_type=unary":       clients * 20,
		"grpc_server_handled_total,grpc_code=OK,grpc_method=Upsert,grpc_service=wpcdb.v1.WPCDBService,grpc_type=bidi_stream": clients,
		"grpc_server_handling_seconds,grpc_method=Search,grpc_service=wpcdb.v1.WPCDBService,grpc_type=unary":                 clients * 20,
		"wpcdb_ingested_items_total,collection=c": clients * batches * per,
		"wpcdb_collection_items,collection=c":     clients * batches * per,
	} {
		if found[key] != want {
			t.Errorf("%s = %v, want %v", key, found[key], want)
		}
	}
}

// gather returns every metric's value (a histogram's sample count) by
// "name,label=value,...".
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				found[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				found[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				found[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return found
}

// TestPanicRecovery: a handler's panic is Internal for that request only.
func TestPanicRecovery(t *testing.T) {
	srv, err := server.New(nil, nil) // no DB: every data method panics
	if err != nil {
		t.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop(context.Background())
	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	cli := pb.NewWPCDBServiceClient(conn)
	for i := 0; i < 2; i++ {
		_, err := cli.ListCollections(context.Background(), &pb.ListCollectionsRequest{})
		if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "nil pointer") {
			t.Fatalf("panic: %v", err)
		}
	}
}

// TestClientDeadline: a search past its deadline stops with
// DeadlineExceeded instead of running on.
func TestClientDeadline(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	ts := startServer(t, &server.Options{Registerer: reg})
	cfg := wpcdb.CollectionConfig{Dim: shape.Dim}
	cfg.Features.Dim = 64
	createPB(t, ts.cli, ctx, "c", cfg)
	synth := bench.NewSynth(shape, 3)
	var items []wpcdb.Item
	for i := 0; i < 3000; i++ {
		items = append(items, synth.Item(i))
	}
	if _, err := upsertPB(ctx, ts.cli, &pb.UpsertRequest{Collection: "c", Items: itemsPB(t, items)}); err != nil {
		t.Fatal(err)
	}
	// A query of 1,000 points makes the exact scan take far longer than
	// the deadlines below, however fast the machine.
	q := pbconv.CloudToPB(synth.Query(0, 1000))
	// A deadline so short that the request may expire before it reaches
	// the server: then the server records nothing, and a longer deadline is
	// tried. Whenever the server did see one, it must have stopped with
	// DeadlineExceeded (or Canceled, when the client's cancellation came
	// first), never OK after a full scan.
	const key = "grpc_server_handled_total,grpc_code=%s,grpc_method=Search,grpc_service=wpcdb.v1.WPCDBService,grpc_type=unary"
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		dctx, cancel := context.WithTimeout(ctx, d)
		_, err := ts.cli.Search(dctx, &pb.SearchRequest{Collection: "c", Query: q, K: 10, Exact: true})
		cancel()
		if err == nil {
			t.Skipf("an exact scan of 3,000 items finished within %v: too fast to test cancellation here", d)
		}
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("search past its %v deadline: %v", d, err)
		}
		for wait := time.Now().Add(2 * time.Second); time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
			m := gather(t, reg)
			if m[fmt.Sprintf(key, "OK")] > 0 {
				t.Fatalf("the server finished a search its client had given up on: %v", m)
			}
			if m[fmt.Sprintf(key, "DeadlineExceeded")]+m[fmt.Sprintf(key, "Canceled")] >= 1 {
				return
			}
		}
	}
	t.Fatal("no search past its deadline was recorded by the server")
}

// TestGracefulStop: Stop lets an in-flight stream finish until its
// deadline, then cancels it.
func TestGracefulStop(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	stream, err := ts.cli.Upsert(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.UpsertRequest{Collection: "c", Items: []*pb.Item{{Id: "a", Cloud: &pb.Cloud{Dim: 2, Points: []float32{1, 0}}}}})
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	// The stream stays open: a graceful stop waits for it, then gives up.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- ts.srv.Stop(sctx) }()
	// Meanwhile the open stream still works.
	time.Sleep(50 * time.Millisecond)
	if err := stream.Send(&pb.UpsertRequest{Items: []*pb.Item{{Id: "b", Cloud: &pb.Cloud{Dim: 2, Points: []float32{0, 1}}}}}); err != nil {
		t.Fatal(err)
	}
	if ack, err := stream.Recv(); err != nil || ack.Written != 1 {
		t.Fatalf("in-flight stream during stop: %v %v", ack, err)
	}
	if err := <-stopped; err != context.DeadlineExceeded {
		t.Fatalf("stop: %v, want the deadline", err)
	}
	if _, err := stream.Recv(); status.Code(err) == codes.OK {
		t.Fatal("stream survived a hard stop")
	}
	if c, _ := ts.db.Collection("c"); c.Count() != 2 {
		t.Fatalf("count %d", c.Count())
	}
}

// TestSnapshotDisabled: without a snapshot directory, Snapshot writes
// nothing anywhere.
func TestSnapshotDisabled(t *testing.T) {
	ts := startServer(t, nil)
	dir := filepath.Join(t.TempDir(), "snap")
	_, err := ts.cli.Snapshot(context.Background(), &pb.SnapshotRequest{Dir: dir})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "snapshots are disabled") {
		t.Fatalf("Snapshot without a root: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was created: %v", dir, err)
	}
}

// TestInflightBudget: a request larger than the in-flight budget is
// ResourceExhausted and writes nothing; smaller ones pass.
func TestInflightBudget(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, &server.Options{MaxInflightFloats: 100})
	cloud := func(dim uint32, w []float32, p ...float32) *pb.Cloud {
		return &pb.Cloud{Dim: dim, Weights: w, Points: p}
	}
	// An item costs its floats plus 4 + 64 + 16 (φ and record allowance).
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 4, Features: collconfig.Features{Dim: 16}})
	small := &pb.Item{Id: "s", Cloud: cloud(4, nil, 1, 2, 3, 4)} // 88 floats
	big := &pb.Item{Id: "b", Cloud: cloud(4, nil, make36()...)}  // 120 floats
	bigQuery := cloud(4, nil, append(make36(), make36()...)...)  // 72 floats
	for _, tc := range []struct {
		items []*pb.Item
		code  codes.Code
	}{{[]*pb.Item{small}, codes.OK}, {[]*pb.Item{big}, codes.ResourceExhausted}} {
		st, err := ts.cli.Upsert(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&pb.UpsertRequest{Collection: "c", Items: tc.items})
		_, err = st.Recv()
		if status.Code(err) != tc.code {
			t.Errorf("upsert of %d floats: %v, want %v", len(tc.items[0].Cloud.Points), err, tc.code)
		}
		st.CloseSend()
	}
	// The unary UpsertBatch holds the same budget as the stream.
	if _, err := ts.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "c", Items: []*pb.Item{big}}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("UpsertBatch of 120 floats: %v, want ResourceExhausted", err)
	}
	if _, err := ts.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "c", Items: []*pb.Item{small}}); err != nil {
		t.Errorf("UpsertBatch within budget: %v", err)
	}
	if _, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: "c", K: 1, Query: big.Cloud}); err != nil {
		t.Errorf("search within budget: %v", err)
	}
	bigQuery = cloud(4, nil, append(bigQuery.Points, bigQuery.Points...)...) // 144 floats
	_, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: "c", K: 1, Query: bigQuery})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "at most 100") {
		t.Errorf("search over budget: %v", err)
	}
	if c, _ := ts.db.Collection("c"); c.Count() != 1 {
		t.Errorf("%d items, want 1", c.Count())
	}
}

func hitsFromPB(t *testing.T, h []*pb.Hit) []wpcdb.Hit {
	t.Helper()
	hits, err := pbconv.HitsFromPB(h)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func cloudFromPB(t *testing.T, c *pb.Cloud) wpcsim.Cloud {
	t.Helper()
	q, err := pbconv.CloudFromPB(c)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
