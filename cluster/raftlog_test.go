package cluster

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

func entry(i, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(term), Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

// TestLogStore: entries, a conflicting suffix replaced, the hard state and
// the applied index survive a reopen; Entries honours its size limit; two
// groups do not see each other's records; a damaged record is an error.
func TestLogStore(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	s, applied, err := openLog(db, "c.s0@1", []uint64{1, 2, 3})
	if err != nil || applied != 0 {
		t.Fatal(applied, err)
	}
	if last, _ := s.LastIndex(); last != 0 {
		t.Fatalf("new log: last %d", last)
	}
	if _, err := s.Entries(1, 2, 1<<20); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("entries of an empty log: %v", err)
	}
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 5; i++ {
		ents = append(ents, entry(i, 1, "x"))
	}
	if err := s.save(ents, &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(2), Commit: proto.Uint64(3)}, true); err != nil {
		t.Fatal(err)
	}
	// Entries 4 and 5 replaced by a new leader's 4 of term 2.
	if err := s.save([]*raftpb.Entry{entry(4, 2, "y")}, &raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(4)}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.save([]*raftpb.Entry{entry(9, 2, "gap")}, nil, true); err == nil {
		t.Fatal("an entry past the log's end was accepted")
	}
	if err := s.setApplied(4); err != nil {
		t.Fatal(err)
	}
	other, _, err := openLog(db, "c.s0@12", []uint64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := other.LastIndex(); last != 0 {
		t.Fatalf("another group sees %d entries", last)
	}
	s, applied, err = openLog(db, "c.s0@1", []uint64{1, 2, 3})
	if err != nil || applied != 4 {
		t.Fatalf("reopen: applied %d, %v", applied, err)
	}
	hs, cs, _ := s.InitialState()
	if hs.GetTerm() != 2 || hs.GetVote() != 1 || hs.GetCommit() != 4 || len(cs.GetVoters()) != 3 {
		t.Fatalf("reopen: hard state %v, conf %v", hs, cs)
	}
	if last, _ := s.LastIndex(); last != 4 {
		t.Fatalf("reopen: last %d, want 4", last)
	}
	for i, want := range []uint64{0, 1, 1, 1, 2} {
		if term, err := s.Term(uint64(i)); err != nil || term != want {
			t.Fatalf("term of %d: %d %v, want %d", i, term, err, want)
		}
	}
	if _, err := s.Term(5); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("term past the end: %v", err)
	}
	got, err := s.Entries(2, 5, 1<<20)
	if err != nil || len(got) != 3 || string(got[2].GetData()) != "y" || got[0].GetIndex() != 2 {
		t.Fatalf("entries 2..4: %v %v", got, err)
	}
	if got, err := s.Entries(1, 5, 1); err != nil || len(got) != 1 {
		t.Fatalf("entries with a 1-byte limit: %d %v, want 1", len(got), err)
	}
	// A damaged entry record (shorter than its term) is an error on reading
	// and on opening, never a panic.
	key := binary.BigEndian.AppendUint64([]byte("g/c.s0@1/e"), 3)
	if err := db.Set(key, []byte{1, 2}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Entries(3, 4, 1<<20); err == nil {
		t.Fatal("a damaged entry was read")
	}
	if _, _, err := openLog(db, "c.s0@1", []uint64{1, 2, 3}); err == nil {
		t.Fatal("a log with a damaged entry opened")
	}
	if err := s.drop(); err != nil {
		t.Fatal(err)
	}
	if s, applied, err = openLog(db, "c.s0@1", []uint64{1}); err != nil || applied != 0 {
		t.Fatalf("after drop: %d %v", applied, err)
	}
	if last, _ := s.LastIndex(); last != 0 {
		t.Fatalf("after drop: last %d", last)
	}
}

// TestEntrySize: a write over the entry limit is refused as
// ResourceExhausted before it is proposed; one at the limit passes.
func TestEntrySize(t *testing.T) {
	w := &pb.ReplicatedWrite{Write: &pb.ReplicatedWrite_Upsert{Upsert: &pb.UpsertBatchRequest{Collection: "c.s0",
		Items: []*pb.Item{{Id: "a", Cloud: &pb.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 2}}}}}}}
	n := proto.Size(w)
	if err := checkEntrySize(w, n); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if err := checkEntrySize(w, n-1); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("over the limit: %v", err)
	}
}

// TestLogCompaction: a compacted log answers ErrCompacted before its
// compaction point, keeps the point's term and its tail across a reopen,
// and describes itself as a snapshot; a received snapshot resets the log
// and leaves an install record that a reopen finds (installing) until
// installed drops it with the applied index.
func TestLogCompaction(t *testing.T) {
	db, err := pebble.Open(t.TempDir(), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	s, _, err := openLog(db, "c.s0@1", []uint64{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	s.snapData = []byte(`{"node":"n1"}`)
	if _, err := s.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) {
		t.Fatalf("snapshot of an uncompacted log: %v", err)
	}
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 8; i++ {
		ents = append(ents, entry(i, 1+i/4, "x"))
	}
	if err := s.save(ents, &raftpb.HardState{Term: proto.Uint64(3), Commit: proto.Uint64(8)}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.setApplied(8); err != nil {
		t.Fatal(err)
	}
	if err := s.compact(9); err == nil {
		t.Fatal("compacted past the last entry")
	}
	if err := s.compact(5); err != nil {
		t.Fatal(err)
	}
	if n, b := s.logLen(); n != 3 || b == 0 {
		t.Fatalf("after compacting to 5: %d entries, %d bytes", n, b)
	}
	check := func(stage string, s *logStore) {
		t.Helper()
		if first, _ := s.FirstIndex(); first != 6 {
			t.Fatalf("%s: first %d, want 6", stage, first)
		}
		if _, err := s.Entries(5, 7, 1<<20); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("%s: entries before the compaction point: %v", stage, err)
		}
		if _, err := s.Term(4); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("%s: term before the compaction point: %v", stage, err)
		}
		if term, err := s.Term(5); err != nil || term != 2 {
			t.Fatalf("%s: term of the compaction point: %d %v", stage, term, err)
		}
		if got, err := s.Entries(6, 9, 1<<20); err != nil || len(got) != 3 || got[0].GetIndex() != 6 {
			t.Fatalf("%s: the tail: %v %v", stage, got, err)
		}
		snap, err := s.Snapshot()
		if err != nil || snap.GetMetadata().GetIndex() != 5 || snap.GetMetadata().GetTerm() != 2 || string(snap.GetData()) != `{"node":"n1"}` {
			t.Fatalf("%s: snapshot %v %v", stage, snap, err)
		}
	}
	check("compacted", s)
	s, applied, err := openLog(db, "c.s0@1", []uint64{1, 2, 3})
	if err != nil || applied != 8 {
		t.Fatalf("reopen: %d %v", applied, err)
	}
	s.snapData = []byte(`{"node":"n1"}`)
	check("reopened", s)
	// Appending over the compaction point is refused; after the tail works.
	if err := s.save([]*raftpb.Entry{entry(5, 3, "z")}, nil, true); err == nil {
		t.Fatal("an entry at the compaction point was accepted")
	}
	if err := s.save([]*raftpb.Entry{entry(9, 3, "z")}, nil, true); err != nil {
		t.Fatal(err)
	}
	// A snapshot at 20 replaces the log.
	meta := &raftpb.SnapshotMetadata{Index: proto.Uint64(20), Term: proto.Uint64(4)}
	if err := s.applySnapshot(meta, "c.s0@1-20"); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 21 {
		t.Fatalf("after the snapshot: first %d", first)
	}
	if last, _ := s.LastIndex(); last != 20 {
		t.Fatalf("after the snapshot: last %d", last)
	}
	// A crash now: the reopened log starts after the snapshot and records
	// the install to finish.
	s, applied, err = openLog(db, "c.s0@1", []uint64{1, 2, 3})
	if err != nil || applied != 8 || s.hs.GetCommit() != 20 {
		t.Fatalf("reopen during the install: applied %d, commit %d, %v", applied, s.hs.GetCommit(), err)
	}
	index, term, dir, ok, err := s.installing()
	if err != nil || !ok || index != 20 || term != 4 || dir != "c.s0@1-20" {
		t.Fatalf("install record: %d %d %q %v %v", index, term, dir, ok, err)
	}
	if err := s.installed(20); err != nil {
		t.Fatal(err)
	}
	s, applied, err = openLog(db, "c.s0@1", []uint64{1, 2, 3})
	if err != nil || applied != 20 {
		t.Fatalf("reopen after the install: %d %v", applied, err)
	}
	if _, _, _, ok, err := s.installing(); ok || err != nil {
		t.Fatalf("the install record is left: %v %v", ok, err)
	}
	if err := s.save([]*raftpb.Entry{entry(21, 4, "after")}, nil, true); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Entries(21, 22, 1<<20); err != nil || string(got[0].GetData()) != "after" {
		t.Fatalf("entry after the snapshot: %v %v", got, err)
	}
}
