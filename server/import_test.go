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

	"github.com/parquet-go/parquet-go"
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
	// A path of 100 KB comes back cut.
	long := "sub/" + strings.Repeat("z", 100<<10) + ".npy"
	if _, err := importAll(ctx, ts.cli, &pb.ImportRequest{Collection: "c", Points: long}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "zzz.npy (") || len(err.Error()) > 1024 {
		t.Errorf("path of 100 KB: %.300v (%d bytes), want InvalidArgument quoting it cut", err, len(fmt.Sprint(err)))
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

// TestImportParquet: the server imports a Parquet file from its import
// directory, streaming its progress, and the items read back as written
// (the oracle: the rows themselves); a path leaving the directory, a file
// given with NumPy companions, and a bad row (named by row and field) are
// refused.
func TestImportParquet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	type row struct {
		Key    string      `parquet:"key"`
		Vecs   [][]float32 `parquet:"vecs,list"`
		Colour string      `parquet:"colour"`
	}
	const n = 23
	rows := make([]row, n)
	for i := range rows {
		rows[i] = row{Key: fmt.Sprintf("k%d", i), Vecs: [][]float32{{float32(i), 1}, {2, float32(i % 5)}}, Colour: []string{"red", "blue"}[i%2]}
	}
	write := func(name string, rows []row) {
		var b bytes.Buffer
		w := parquet.NewGenericWriter[row](&b, parquet.MaxRowsPerRowGroup(8))
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("in.parquet", rows)
	ts := startServer(t, &server.Options{ImportRoot: dir})
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	req := &pb.ImportRequest{Collection: "c", Parquet: "in.parquet", ParquetId: "key", ParquetPoints: "vecs", Batch: 10}
	msgs, err := importAll(ctx, ts.cli, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 4 || !msgs[3].Done || msgs[3].Committed != n || msgs[0].Committed != 10 || msgs[0].Rows != n || msgs[0].Read < msgs[0].Committed {
		t.Fatalf("progress %v; want 3 batches of at most 10 and a last message, %d committed", msgs, n)
	}
	c, err := ts.db.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		it, err := c.Get(ctx, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint(r.Vecs[0], r.Vecs[1]); fmt.Sprint(it.Cloud.Points[:2], it.Cloud.Points[2:]) != want || it.Attrs["colour"] != r.Colour {
			t.Fatalf("row %d: %+v, want points %s colour %s", i, it, want, r.Colour)
		}
	}
	bad := append([]row(nil), rows...)
	bad[14].Vecs = [][]float32{{1, 2, 3}}
	write("bad.parquet", bad)
	for _, tc := range []struct {
		req  *pb.ImportRequest
		want string
	}{
		{&pb.ImportRequest{Collection: "c", Parquet: "../in.parquet"}, "import directory"},
		{&pb.ImportRequest{Collection: "c", Parquet: "in.parquet", Ids: "ids.txt"}, "go with points"},
		{&pb.ImportRequest{Collection: "c", Parquet: "in.parquet"}, `no column "points"`},
		{&pb.ImportRequest{Collection: "c", Parquet: "bad.parquet", ParquetId: "key", ParquetPoints: "vecs", Batch: 10}, "row 14: vecs[0]: 3 coordinates"},
	} {
		_, err := importAll(ctx, ts.cli, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want InvalidArgument with %q", tc.req, err, tc.want)
		}
	}
	if c.Count() != n {
		t.Errorf("%d items after the refused imports, want %d", c.Count(), n)
	}
}
