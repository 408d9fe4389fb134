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
