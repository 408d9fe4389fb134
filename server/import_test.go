package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

func writeNPY(t *testing.T, path string, shape []int, data []float32) {
	t.Helper()
	var b bytes.Buffer
	if err := npy.WriteFloat32(&b, shape, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// importAll runs an Import and returns its progress messages, or its error.
func importAll(ctx context.Context, cli pb.WPCDBServiceClient, req *pb.ImportRequest) ([]*pb.ImportResponse, error) {
	stream, err := cli.Import(ctx, req)
	if err != nil {
		return nil, err
	}
	var msgs []*pb.ImportResponse
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

// TestImport: the server imports NumPy files from its import directory in
// batches, reporting progress, and the items read back as written (the
// oracle: the arrays themselves); paths leaving the directory (absolute,
// "..", a symlink) are refused before anything is read, and a server
// without an import directory refuses imports.
func TestImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	outside := t.TempDir()
	const n, m, d = 25, 3, 2
	pts := make([]float32, n*m*d)
	for i := range pts {
		pts[i] = float32(i%7) + 1
	}
	writeNPY(t, filepath.Join(dir, "p.npy"), []int{n, m, d}, pts)
	writeNPY(t, filepath.Join(outside, "secret.npy"), []int{n, m, d}, pts)
	if err := os.Symlink(filepath.Join(outside, "secret.npy"), filepath.Join(dir, "link.npy")); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, &server.Options{ImportRoot: dir})
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: d})
	msgs, err := importAll(ctx, ts.cli, &pb.ImportRequest{Collection: "c", Points: "p.npy", Batch: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 4 || !msgs[3].Done || msgs[3].Committed != n || msgs[0].Committed != 10 || msgs[0].Rows != n {
		t.Fatalf("progress %v; want 3 batches of at most 10 and a last message, %d committed", msgs, n)
	}
	c, err := ts.db.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		it, err := c.Get(ctx, fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		if want := pts[i*m*d : (i+1)*m*d]; fmt.Sprint(it.Cloud.Points) != fmt.Sprint(want) {
			t.Fatalf("item %d: points %v, want %v", i, it.Cloud.Points, want)
		}
	}
	for _, p := range []string{filepath.Join(outside, "secret.npy"), "../" + filepath.Base(outside) + "/secret.npy", "link.npy"} {
		_, err := importAll(ctx, ts.cli, &pb.ImportRequest{Collection: "c", Points: p})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("points %s: %v, want InvalidArgument", p, err)
		}
	}
	if _, err := importAll(ctx, ts.cli, &pb.ImportRequest{Collection: "c", Points: "missing.npy"}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("missing file: %v", err)
	}
	if c.Count() != n {
		t.Errorf("%d items after the refused imports, want %d", c.Count(), n)
	}
	off := startServer(t, nil)
	createPB(t, off.cli, ctx, "c", wpcdb.CollectionConfig{Dim: d})
	if _, err := importAll(ctx, off.cli, &pb.ImportRequest{Collection: "c", Points: "p.npy"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("import without an import directory: %v", err)
	}
}
