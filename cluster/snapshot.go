package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// Snapshots: a replica whose log lacks entries another replica compacted
// catches up from a checkpoint of that replica's collection data plus the
// log after it.
//
//  1. The leader's Raft sends a snapshot message (its index and term are
//     the leader's compaction point; its Data names the leader).
//  2. The receiving node, before stepping it into Raft, fetches the
//     checkpoint (FetchSnapshot, streamed in chunks of at most
//     snapshotChunkBytes, each with a CRC-32C) into a folder of its
//     snapshot folder named "<group>-<index>.part", checking every limit
//     (snapshotLimits) before writing, syncs it and renames it without
//     ".part". A damaged, oversized or cut stream is an error: the
//     folder is deleted, nothing else changed, and the leader sends the
//     snapshot again later.
//  3. Raft accepts the message (or ignores it, when the replica caught up
//     meanwhile: the folder is deleted); the Ready loop resets the log to
//     start after the snapshot's index and records the install, synced
//     (logStore.applySnapshot).
//  4. The applier installs the checkpoint (installCheckpoint): it opens
//     it as a database, writes each of its shard's items into the local
//     collection (created when missing) and deletes the local items the
//     checkpoint lacks, ends the load (calibration) and records the
//     snapshot's index as applied, dropping the install record
//     (logStore.installed); the folder goes last.
//
// A crash before step 3 leaves the replica as it was (a leftover folder is
// deleted when the node starts). A crash during step 4 leaves the install
// record: the node installs the same folder again when it starts, before
// applying anything else; installing is idempotent, as applying is. The
// checkpoint the sender makes is of its database at its applied index,
// which is at least the snapshot's index; replaying the log after the
// snapshot's index over it is harmless (see group).
//
// The sender's checkpoint is DB.Snapshot (Pebble's checkpoint, files
// hard-linked) of its whole database, so the transfer carries the node's
// other collections too; restricting it to the shard's key range is
// left for later.

// snapshotFetchTimeout: a leader that sent a snapshot message and was
// not asked for its checkpoint within it reports the snapshot failed to
// Raft, which sends another (the message or the receiver was lost).
// Serving a checkpoint has no timeout (the receiver's call ends it).
const snapshotFetchTimeout = 5 * time.Second

// snapshotInstallGrace: a receiver that fetched a checkpoint and did not
// answer within it and snapshotFetchTimeout more (its install failed, or
// is very slow) is sent the snapshot again.
const snapshotInstallGrace = time.Minute

// stagedTimeout: a fetched checkpoint that Raft did not take within it
// (the replica had caught up meanwhile) is deleted.
const stagedTimeout = time.Minute

// snapshotChunkBytes is the data of one FetchSnapshotResponse (a chunk).
const snapshotChunkBytes = 1 << 20

// snapshotLimits bound what a receiver accepts, checked before anything
// is written.
type snapshotLimits struct {
	maxBytes int64 // all files
	maxFiles int
}

func (l snapshotLimits) withDefaults() snapshotLimits {
	if l.maxBytes == 0 {
		l.maxBytes = DefaultMaxSnapshotBytes
	}
	if l.maxFiles == 0 {
		l.maxFiles = 100_000
	}
	return l
}

// DefaultMaxSnapshotBytes is the largest snapshot a node accepts unless
// ReplicaOptions.MaxSnapshotBytes says otherwise.
const DefaultMaxSnapshotBytes = 1 << 40

// ErrSnapshot marks a snapshot transfer refused by its receiver: a chunk
// damaged, out of order or over a limit.
var ErrSnapshot = errors.New("cluster: snapshot")

// receiveCheckpoint writes the chunks recv returns into dir (created; it
// must not exist), checking each before it is written: the file name is
// one path element, files come whole and in order, each chunk's CRC-32C
// matches, the totals stay within lim and match the final chunk's. The
// files and dir are synced. On any error dir is removed.
func receiveCheckpoint(recv func() (*pb.FetchSnapshotResponse, error), dir string, lim snapshotLimits) (err error) {
	lim = lim.withDefaults()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	var (
		f             *os.File
		name          string
		size, written uint64
		files         int
		total         uint64
		seen          = map[string]bool{}
		errChunk      = func(format string, a ...any) error {
			return fmt.Errorf("%w: %s", ErrSnapshot, fmt.Sprintf(format, a...))
		}
	)
	syncAndCloseFile := func() error {
		if f == nil {
			return nil
		}
		if written != size {
			return errChunk("file %q: %d of its %d bytes", name, written, size)
		}
		err := errors.Join(f.Sync(), f.Close())
		f = nil
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		c, err := recv()
		if errors.Is(err, io.EOF) {
			return errChunk("the stream ended before its last chunk")
		}
		if err != nil {
			return err
		}
		if c.GetDone() {
			if err := syncAndCloseFile(); err != nil {
				return err
			}
			if c.GetFiles() != uint64(files) || c.GetBytes() != total {
				return errChunk("received %d files of %d bytes, the sender sent %d of %d", files, total, c.GetFiles(), c.GetBytes())
			}
			d, err := os.Open(dir)
			if err != nil {
				return err
			}
			return errors.Join(d.Sync(), d.Close())
		}
		if len(c.GetData()) > snapshotChunkBytes {
			return errChunk("file %q: a chunk of %d bytes (at most %d)", c.GetFile(), len(c.GetData()), snapshotChunkBytes)
		}
		if crc32.Checksum(c.GetData(), castagnoli) != c.GetCrc32C() {
			return errChunk("file %q at offset %d: checksum mismatch (the chunk is damaged)", c.GetFile(), c.GetOffset())
		}
		if f == nil || c.GetFile() != name {
			// A new file.
			if err := syncAndCloseFile(); err != nil {
				return err
			}
			n := c.GetFile()
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) || !filepath.IsLocal(n) || len(n) > 255 {
				return errChunk("file name %q: not one path element", n)
			}
			if seen[n] {
				return errChunk("file %q sent twice", n)
			}
			if c.GetOffset() != 0 {
				return errChunk("file %q starts at offset %d", n, c.GetOffset())
			}
			if files++; files > lim.maxFiles {
				return errChunk("more than %d files", lim.maxFiles)
			}
			if c.GetSize() > uint64(lim.maxBytes) || total+c.GetSize() > uint64(lim.maxBytes) {
				return errChunk("file %q of %d bytes: the snapshot would pass %d bytes", n, c.GetSize(), lim.maxBytes)
			}
			seen[n] = true
			name, size, written = n, c.GetSize(), 0
			total += size
			if f, err = os.OpenFile(filepath.Join(dir, n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
				return err
			}
		}
		if c.GetOffset() != written || c.GetSize() != size {
			return errChunk("file %q: a chunk at offset %d of size %d, expected offset %d of size %d", name, c.GetOffset(), c.GetSize(), written, size)
		}
		if written+uint64(len(c.GetData())) > size {
			return errChunk("file %q: data past its %d bytes", name, size)
		}
		if _, err := f.Write(c.GetData()); err != nil {
			return err
		}
		written += uint64(len(c.GetData()))
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sendCheckpoint streams the files of the checkpoint in dir.
func sendCheckpoint(dir string, send func(*pb.FetchSnapshotResponse) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	buf := make([]byte, snapshotChunkBytes)
	var files, total uint64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		size := uint64(fi.Size())
		var off uint64
		for first := true; first || off < size; first = false {
			n, err := io.ReadFull(f, buf[:min(uint64(len(buf)), size-off)])
			if err != nil && !(n == 0 && size == 0) {
				f.Close()
				return fmt.Errorf("reading %s: %w", e.Name(), err)
			}
			if err := send(&pb.FetchSnapshotResponse{File: e.Name(), Offset: off, Data: buf[:n], Crc32C: crc32.Checksum(buf[:n], castagnoli), Size: size}); err != nil {
				f.Close()
				return err
			}
			off += uint64(n)
		}
		f.Close()
		files++
		total += size
	}
	return send(&pb.FetchSnapshotResponse{Done: true, Files: files, Bytes: total})
}

// installCheckpoint makes the collection name in db hold exactly the items
// of the collection name in the checkpoint in dir (see the steps above):
// it is created (with the checkpoint's configuration) when missing, each
// checkpoint item is written, each local item the checkpoint lacks is
// deleted, and the load ends. Idempotent.
func installCheckpoint(ctx context.Context, db *wpcdb.DB, dir, name string) error {
	src, err := wpcdb.Open(dir, &wpcdb.Options{CacheBytes: 8 << 20, CloudCacheBytes: -1})
	if err != nil {
		return fmt.Errorf("opening the snapshot: %w", err)
	}
	defer src.Close()
	from, err := src.Collection(name)
	if err != nil {
		return fmt.Errorf("the snapshot: %w", err)
	}
	to, err := db.Collection(name)
	if errors.Is(err, wpcdb.ErrCollectionNotFound) {
		if from.Config().Features.Imported {
			return fmt.Errorf("collection %q: installing a snapshot of a collection with an imported feature sample into a node without it is not supported", name)
		}
		to, err = db.CreateCollection(ctx, name, from.Config())
	}
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for cursor := ""; ; {
		page, err := from.Scroll(ctx, wpcdb.ScrollOptions{Cursor: cursor, Limit: 256, WithClouds: true})
		if err != nil {
			return fmt.Errorf("reading the snapshot: %w", err)
		}
		for _, it := range page.Items {
			have[it.ID] = true
		}
		if len(page.Items) > 0 {
			if err := to.Upsert(ctx, page.Items); err != nil {
				return err
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	for cursor := ""; ; {
		page, err := to.Scroll(ctx, wpcdb.ScrollOptions{Cursor: cursor, Limit: 1024})
		if err != nil {
			return err
		}
		var gone []string
		for _, it := range page.Items {
			if !have[it.ID] {
				gone = append(gone, it.ID)
			}
		}
		if len(gone) > 0 {
			if _, err := to.Delete(ctx, gone...); err != nil {
				return err
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	return to.LoadDone(ctx)
}

// FetchSnapshot serves a checkpoint of this node's replica of a shard to a
// replica that must catch up from it.
func (t transport) FetchSnapshot(req *pb.FetchSnapshotRequest, stream pb.ReplicationService_FetchSnapshotServer) error {
	name, _, _ := cutLast(req.GetGroup(), "@")
	g := t.r.group(name)
	if g == nil || g.key != req.GetGroup() {
		return status.Errorf(codes.NotFound, "group %s: no replica on node %q", req.GetGroup(), t.r.node.ID())
	}
	// Close waits for it (the checkpoint reads the node's database).
	t.r.mu.Lock()
	if t.r.closed {
		t.r.mu.Unlock()
		return g.errStopped()
	}
	t.r.wg.Add(1)
	t.r.mu.Unlock()
	defer t.r.wg.Done()
	to := peerIDOf(*g.peers.Load(), req.GetNode())
	err := g.serveSnapshot(stream.Context(), req.GetIndex(), to, stream.Send)
	if to != 0 {
		g.reportSnapshot(to, err == nil)
	}
	return err
}

// serveSnapshot makes a checkpoint of the node's database once the group
// has applied index, and sends it.
func (g *group) serveSnapshot(ctx context.Context, index, to uint64, send func(*pb.FetchSnapshotResponse) error) error {
	if g.r.db == nil {
		return status.Errorf(codes.FailedPrecondition, "node %q: no database to snapshot", g.r.node.ID())
	}
	g.smu.Lock()
	applied := g.status.Applied
	g.smu.Unlock()
	if applied < index {
		return status.Errorf(codes.FailedPrecondition, "group %s: node %q applied %d, before the snapshot's index %d", g.key, g.r.node.ID(), applied, index)
	}
	if to != 0 {
		g.reportSnapshotStarted(to)
	}
	if err := os.MkdirAll(g.r.snapDir, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(g.r.snapDir, "out-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ck := filepath.Join(dir, "ck")
	if err := g.r.db.Snapshot(ck); err != nil {
		return status.Errorf(codes.Internal, "group %s: checkpoint: %v", g.key, err)
	}
	return sendCheckpoint(ck, func(c *pb.FetchSnapshotResponse) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if g.r.ctx.Err() != nil {
			return g.errStopped()
		}
		return send(c)
	})
}

func peerIDOf(peers map[uint64]string, node string) uint64 {
	for id, p := range peers {
		if p == node {
			return id
		}
	}
	return 0
}
