package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestSnapshotTransfer: a checkpoint's files sent in chunks arrive equal;
// a damaged chunk, a bad file name, a file past the size limit, a file
// over its declared size, a stream cut short and wrong totals are each an
// ErrSnapshot error (never a panic), and leave no folder behind.
func TestSnapshotTransfer(t *testing.T) {
	const seed = 1921
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	src := t.TempDir()
	files := map[string][]byte{"empty": nil, "small": []byte("wpcdb"), "big": make([]byte, 2*snapshotChunkBytes+123)}
	for i := range files["big"] {
		files["big"][i] = byte(rng.IntN(256))
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var chunks []*pb.FetchSnapshotResponse
	if err := sendCheckpoint(src, func(c *pb.FetchSnapshotResponse) error {
		chunks = append(chunks, proto.CloneOf(c)) // the sender reuses its buffer
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := len(chunks); n != 1+1+3+1 {
		t.Fatalf("%d chunks, want 6", n)
	}
	recvFrom := func(cs []*pb.FetchSnapshotResponse) func() (*pb.FetchSnapshotResponse, error) {
		return func() (*pb.FetchSnapshotResponse, error) {
			if len(cs) == 0 {
				return nil, io.EOF
			}
			c := cs[0]
			cs = cs[1:]
			return c, nil
		}
	}
	root := t.TempDir()
	dst := filepath.Join(root, "ok")
	if err := receiveCheckpoint(recvFrom(chunks), dst, snapshotLimits{}); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes (%v), want %d", name, len(got), err, len(data))
		}
	}
	bigChunk := -1
	for i, c := range chunks {
		if c.GetFile() == "big" && c.GetOffset() > 0 {
			bigChunk = i
			break
		}
	}
	cases := map[string]struct {
		edit func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse
		lim  snapshotLimits
	}{
		"damaged": {edit: func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse {
			cs[bigChunk].Data = bytes.Clone(cs[bigChunk].Data)
			cs[bigChunk].Data[7] ^= 1
			return cs
		}},
		"name": {edit: func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse {
			cs[0].File = "../escape"
			return cs
		}},
		"limit": {lim: snapshotLimits{maxBytes: 2 * snapshotChunkBytes}},
		"files": {lim: snapshotLimits{maxFiles: 2}},
		"cut":   {edit: func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse { return cs[:len(cs)-2] }},
		"missing chunk": {edit: func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse {
			return append(cs[:bigChunk:bigChunk], cs[bigChunk+1:]...)
		}},
		"past its size": {edit: func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse {
			for _, c := range cs {
				if c.GetFile() == "small" {
					c.Size = 2
				}
			}
			return cs
		}},
		"totals": {edit: func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse {
			cs[len(cs)-1].Bytes++
			return cs
		}},
		"oversized chunk": {edit: func(cs []*pb.FetchSnapshotResponse) []*pb.FetchSnapshotResponse {
			c := cs[bigChunk]
			c.Data = make([]byte, snapshotChunkBytes+1)
			c.Crc32C = 0
			return cs
		}},
	}
	for name, tc := range cases {
		cs := make([]*pb.FetchSnapshotResponse, len(chunks))
		for i, c := range chunks {
			cs[i] = proto.CloneOf(c)
		}
		if tc.edit != nil {
			cs = tc.edit(cs)
		}
		dir := filepath.Join(root, "bad")
		err := receiveCheckpoint(recvFrom(cs), dir, tc.lim)
		if !errors.Is(err, ErrSnapshot) {
			t.Fatalf("%s: %v, want ErrSnapshot", name, err)
		}
		t.Logf("%s: %v", name, err)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s: the folder is left (%v)", name, err)
		}
	}
}

// TestInstallCheckpoint: installing a checkpoint makes the collection hold
// exactly its items (items it lacks deleted, changed ones rewritten,
// attributes too), creates a missing collection, and installing again (a
// restart finishing an install) changes nothing; a folder that is not a
// database is an error.
func TestInstallCheckpoint(t *testing.T) {
	const seed = 1922
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	ctx := context.Background()
	cfg := wpcdb.CollectionConfig{Dim: 4}
	item := func(i int) wpcdb.Item {
		c := wpctest.RandomCloud(rng, 1+rng.IntN(4), 4, wpctest.Shape{})
		return wpcdb.Item{ID: fmt.Sprintf("it-%02d", i), Cloud: wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: c.Points}, Attrs: map[string]any{"i": float64(i)}}
	}
	open := func() *wpcdb.DB {
		db, err := wpcdb.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	src := open()
	sc, err := src.CreateCollection(ctx, "c.s0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var want []wpcdb.Item
	for i := range 30 {
		want = append(want, item(i))
	}
	if err := sc.Upsert(ctx, want); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(t.TempDir(), "ck")
	if err := src.Snapshot(ck); err != nil {
		t.Fatal(err)
	}
	dst := open()
	dc, err := dst.CreateCollection(ctx, "c.s0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The replica's old state: some items the same, some different, some
	// the checkpoint lacks.
	old := []wpcdb.Item{want[0], item(3), item(31), item(40)}
	if err := dc.Upsert(ctx, old); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, 45)
	for i := range 45 {
		ids = append(ids, fmt.Sprintf("it-%02d", i))
	}
	equal := func(stage string, db *wpcdb.DB) {
		t.Helper()
		a, err := db.Collection("c.s0")
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		got, missing, err := a.GetMany(ctx, ids)
		if err != nil || len(got) != len(want) || len(missing) != 15 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %d items, %d missing (%v); want %d", stage, len(got), len(missing), err, len(want))
		}
	}
	for _, stage := range []string{"installed", "installed again"} {
		if err := installCheckpoint(ctx, dst, ck, "c.s0"); err != nil {
			t.Fatal(err)
		}
		equal(stage, dst)
	}
	fresh := open()
	if err := installCheckpoint(ctx, fresh, ck, "c.s0"); err != nil {
		t.Fatal(err)
	}
	equal("into a node without the collection", fresh)
	if err := installCheckpoint(ctx, fresh, t.TempDir(), "c.s0"); err == nil {
		t.Fatal("an empty folder installed")
	}
}
