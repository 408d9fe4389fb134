package cluster

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
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
	var chunks []*pb.SnapshotChunk
	if err := sendCheckpoint(src, func(c *pb.SnapshotChunk) error {
		chunks = append(chunks, proto.CloneOf(c)) // the sender reuses its buffer
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := len(chunks); n != 1+1+3+1 {
		t.Fatalf("%d chunks, want 6", n)
	}
	recvFrom := func(cs []*pb.SnapshotChunk) func() (*pb.SnapshotChunk, error) {
		return func() (*pb.SnapshotChunk, error) {
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
		edit func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk
		lim  snapshotLimits
	}{
		"damaged": {edit: func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk {
			cs[bigChunk].Data = bytes.Clone(cs[bigChunk].Data)
			cs[bigChunk].Data[7] ^= 1
			return cs
		}},
		"name": {edit: func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk {
			cs[0].File = "../escape"
			return cs
		}},
		"limit": {lim: snapshotLimits{maxBytes: 2 * snapshotChunkBytes}},
		"files": {lim: snapshotLimits{maxFiles: 2}},
		"cut": {edit: func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk { return cs[:len(cs)-2] }},
		"missing chunk": {edit: func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk {
			return append(cs[:bigChunk:bigChunk], cs[bigChunk+1:]...)
		}},
		"past its size": {edit: func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk {
			for _, c := range cs {
				if c.GetFile() == "small" {
					c.Size = 2
				}
			}
			return cs
		}},
		"totals": {edit: func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk {
			cs[len(cs)-1].Bytes++
			return cs
		}},
		"oversized chunk": {edit: func(cs []*pb.SnapshotChunk) []*pb.SnapshotChunk {
			c := cs[bigChunk]
			c.Data = make([]byte, snapshotChunkBytes+1)
			c.Crc32C = 0
			return cs
		}},
	}
	for name, tc := range cases {
		cs := make([]*pb.SnapshotChunk, len(chunks))
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
