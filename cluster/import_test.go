package cluster_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/cluster"
	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// writeImport writes n clouds of 2–6 points as padded NumPy files
// (points, weights, lengths) and an ID file into dir; the item of row bad
// (if any) gets a NaN weight.
func writeImport(t *testing.T, dir string, rng *rand.Rand, n, dim, bad int) {
	t.Helper()
	const m = 6
	pts := make([]float32, n*m*dim)
	ws := make([]float32, n*m)
	var lens bytes.Buffer
	if err := npy.WriteHeader(&lens, "<i8", []int{n}); err != nil {
		t.Fatal(err)
	}
	var ids strings.Builder
	for i := range n {
		c := wpctest.RandomCloud(rng, 2+rng.IntN(m-1), dim, wpctest.Shape{})
		copy(pts[i*m*dim:], c.Points)
		copy(ws[i*m:], c.Weights)
		if i == bad {
			ws[i*m] = float32(math.NaN())
		}
		binary.Write(&lens, binary.LittleEndian, int64(len(c.Weights)))
		fmt.Fprintf(&ids, "row-%03d\n", i)
	}
	write := func(name string, shape []int, data []float32) {
		var b bytes.Buffer
		if err := npy.WriteFloat32(&b, shape, data); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("p.npy", []int{n, m, dim}, pts)
	write("w.npy", []int{n, m}, ws)
	for name, b := range map[string][]byte{"l.npy": lens.Bytes(), "ids.txt": []byte(ids.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runImport runs an Import to its end and returns the last message.
func runImport(ctx context.Context, cli pb.WPCDBServiceClient, req *pb.ImportRequest) (*pb.ImportResponse, error) {
	stream, err := cli.Import(ctx, req)
	if err != nil {
		return nil, err
	}
	var last *pb.ImportResponse
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return nil, err
		}
		last = msg
	}
}

// TestImportSharded: an Import sent to one node of a cluster reads the
// files from that node's import directory and writes them over the
// sharded collection's three shards; searches then answer as one plain
// node that imported the same files. A file with an invalid row is refused
// naming the row, and the batch holding it is written on no shard.
func TestImportSharded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four servers")
	}
	ctx, nodes, one := startThree(t)
	const dim, n = 8, 60
	cfg := pbconv.ConfigToPB(wpcdb.CollectionConfig{Dim: dim}.WithDefaults())
	for _, name := range []string{"c", "bad"} {
		if _, err := nodes[0].cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: name, Config: cfg}); err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			waitView(t, nd.m.Client, "collection "+name, func(v *cluster.View) bool { _, ok := v.Collection(name); return ok })
		}
	}
	if _, err := one.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "c", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	writeImport(t, nodes[1].importDir, rng, n, dim, -1)
	writeImport(t, one.importDir, wpctest.NewRand(seed), n, dim, -1)
	req := &pb.ImportRequest{Collection: "c", Points: "p.npy", Weights: "w.npy", Lengths: "l.npy", Ids: "ids.txt", Batch: 16}
	last, err := runImport(ctx, nodes[1].cli, req)
	if err != nil {
		t.Fatal(err)
	}
	if !last.GetDone() || last.GetCommitted() != n {
		t.Fatalf("cluster import ended with %v, want done with %d committed", last, n)
	}
	if _, err := runImport(ctx, one.cli, req); err != nil {
		t.Fatal(err)
	}
	// Every shard holds a part, and the parts add up.
	m, _ := nodes[0].m.View().Collection("c")
	for k, s := range m.Shards {
		cnt, err := nodes[0].cli.Count(ctx, &pb.CountRequest{Collection: cluster.ShardName("c", k)})
		if s.Leader != "n1" {
			continue // counted through its own node below
		}
		if err != nil || cnt.GetCount() == 0 {
			t.Fatalf("shard %d on n1: count %v, %v: want a part of the items", k, cnt, err)
		}
	}
	if cnt, err := nodes[2].cli.Count(ctx, &pb.CountRequest{Collection: "c"}); err != nil || cnt.GetCount() != n {
		t.Fatalf("count %v, %v; want %d", cnt, err, n)
	}
	for qi := range 4 {
		q := pbCloud(wpctest.RandomCloud(rng, 3, dim, wpctest.Shape{}))
		for _, r := range []*pb.SearchRequest{{K: 10}, {K: 10, Exact: true}} {
			r.Collection, r.Query = "c", q
			want, err := one.cli.Search(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := nodes[qi%3].cli.Search(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Hits) != 10 || !equalHits(got.Hits, want.Hits) {
				t.Fatalf("query %d (exact %v): cluster hits\n%v\nwant (one node)\n%v", qi, r.Exact, got.Hits, want.Hits)
			}
		}
	}

	// Row 21 is invalid: batches of 8 commit rows 0–15, then the batch of
	// rows 16–23 is refused whole, on every shard.
	writeImport(t, nodes[2].importDir, wpctest.NewRand(seed+1), 40, dim, 21)
	req = &pb.ImportRequest{Collection: "bad", Points: "p.npy", Weights: "w.npy", Lengths: "l.npy", Ids: "ids.txt", Batch: 8}
	_, err = runImport(ctx, nodes[2].cli, req)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "row 21") || !strings.Contains(err.Error(), "row-021") {
		t.Fatalf("import of a file with a NaN weight at row 21: %v; want InvalidArgument naming row 21 and its ID", err)
	}
	if cnt, err := nodes[0].cli.Count(ctx, &pb.CountRequest{Collection: "bad"}); err != nil || cnt.GetCount() != 16 {
		t.Fatalf("after the refused import: count %v, %v; want the 16 rows before the refused batch", cnt, err)
	}
	// An unknown collection is NotFound, as on one node.
	req.Collection = "nope"
	if _, err := runImport(ctx, nodes[2].cli, req); status.Code(err) != codes.NotFound {
		t.Fatalf("import into an unknown collection: %v, want NotFound", err)
	}
}
