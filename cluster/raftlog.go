package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// logStore is one shard group's Raft log and hard state in the node's Raft
// Pebble (a database of its own, not the collections'), under the
// group's prefix:
//
//	g/<group>/h                 HardState (proto)
//	g/<group>/a                 applied index (8 bytes, big-endian)
//	g/<group>/c                 the log's compaction point: index, term (8 + 8 bytes)
//	g/<group>/k                 ConfState (proto), once a conf change was applied
//	g/<group>/i                 a snapshot being installed: index, term (8 + 8), folder name
//	g/<group>/e<index, 8 bytes> term (8 bytes, big-endian), then the Entry (proto)
//
// It implements raft.Storage. The log holds the entries first..last;
// those up to the compaction point (first-1) were applied and deleted
// (compact), and a replica that needs them catches up from a snapshot:
// a checkpoint of another replica's collection (snapshot.go) plus the log
// after it. The configuration is the shard's replicas in the catalog
// until a conf change (a replica move) is applied; from then on the
// stored one. The terms and sizes of the
// entries are kept in memory (12 bytes an entry) for Term, LastIndex and
// the compaction threshold; entries are read from Pebble.
//
// Only the group's Raft loop calls the raft.Storage methods, save,
// compact and applySnapshot (so an Entries call never meets a compaction
// half done); other goroutines read LastIndex.
type logStore struct {
	db     *pebble.DB
	prefix []byte

	mu        sync.Mutex
	hs        *raftpb.HardState
	cs        *raftpb.ConfState
	snapIndex uint64   // the compaction point: entries up to it are gone
	snapTerm  uint64   // its term
	terms     []uint64 // terms[i] is the term of entry snapIndex+1+i
	sizes     []uint32 // sizes[i] is the stored size of that entry
	bytes     uint64   // the sum of sizes
	snapData  []byte   // a snapshot's Data (snapshotRef): who serves its checkpoint
}

// snapshotRef is a Raft snapshot's Data: the node whose checkpoint the
// receiver fetches (FetchSnapshot), the leader that sent it.
type snapshotRef struct {
	Node string `json:"node"`
}

func groupPrefix(group string) []byte { return []byte("g/" + group + "/") }

func (s *logStore) key(suffix byte) []byte {
	return append(append([]byte(nil), s.prefix...), suffix)
}

func (s *logStore) entryKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(s.key('e'), i)
}

// openLog loads a group's log (empty for a new group) and returns its
// applied index. A snapshot install the node did not finish is
// s.installing (see applySnapshot).
func openLog(db *pebble.DB, group string, voters []uint64) (*logStore, uint64, error) {
	s := &logStore{db: db, prefix: groupPrefix(group), hs: &raftpb.HardState{}, cs: &raftpb.ConfState{Voters: voters}}
	if v, ok, err := s.get(s.key('h')); err != nil {
		return nil, 0, err
	} else if ok {
		if err := proto.Unmarshal(v, s.hs); err != nil {
			return nil, 0, fmt.Errorf("cluster: group %s: hard state: %w", group, err)
		}
	}
	var applied uint64
	if v, ok, err := s.get(s.key('a')); err != nil {
		return nil, 0, err
	} else if ok {
		if len(v) != 8 {
			return nil, 0, fmt.Errorf("cluster: group %s: applied index of %d bytes", group, len(v))
		}
		applied = binary.BigEndian.Uint64(v)
	}
	if v, ok, err := s.get(s.key('k')); err != nil {
		return nil, 0, err
	} else if ok {
		cs := &raftpb.ConfState{}
		if err := proto.Unmarshal(v, cs); err != nil {
			return nil, 0, fmt.Errorf("cluster: group %s: conf state: %w", group, err)
		}
		s.cs = cs
	}
	if v, ok, err := s.get(s.key('c')); err != nil {
		return nil, 0, err
	} else if ok {
		if len(v) != 16 {
			return nil, 0, fmt.Errorf("cluster: group %s: compaction point of %d bytes", group, len(v))
		}
		s.snapIndex, s.snapTerm = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: s.key('e'), UpperBound: s.key('e' + 1)})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		want := s.snapIndex + uint64(len(s.terms)) + 1
		if len(k) != len(s.prefix)+9 || binary.BigEndian.Uint64(k[len(s.prefix)+1:]) != want || len(v) < 8 {
			return nil, 0, fmt.Errorf("cluster: group %s: log entry key %x: want entry %d", group, k, want)
		}
		s.terms = append(s.terms, binary.BigEndian.Uint64(v))
		s.sizes = append(s.sizes, uint32(len(v)))
		s.bytes += uint64(len(v))
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	last := s.snapIndex + uint64(len(s.terms))
	if c := s.hs.GetCommit(); c > last || applied > c {
		return nil, 0, fmt.Errorf("cluster: group %s: commit %d and applied %d past the log's last entry %d", group, c, applied, last)
	}
	return s, applied, nil
}

// installing returns the snapshot install the node began and did not
// finish (its index, term and folder name), if any.
func (s *logStore) installing() (index, term uint64, dir string, ok bool, err error) {
	v, ok, err := s.get(s.key('i'))
	if err != nil || !ok {
		return 0, 0, "", false, err
	}
	if len(v) < 17 {
		return 0, 0, "", false, fmt.Errorf("cluster: snapshot install record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), string(v[16:]), true, nil
}

func (s *logStore) get(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

func (s *logStore) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.CloneOf(s.hs), proto.CloneOf(s.cs), nil
}

func (s *logStore) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	first, last := s.snapIndex+1, s.snapIndex+uint64(len(s.terms))
	s.mu.Unlock()
	if lo < first {
		return nil, raft.ErrCompacted
	}
	if hi > last+1 || lo > hi {
		return nil, raft.ErrUnavailable
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.entryKey(lo), UpperBound: s.entryKey(hi)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var (
		out  []*raftpb.Entry
		size uint64
	)
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		e := &raftpb.Entry{}
		if len(v) < 8 {
			return nil, fmt.Errorf("cluster: log entry %x: %d bytes", it.Key(), len(v))
		}
		if err := proto.Unmarshal(v[8:], e); err != nil {
			return nil, fmt.Errorf("cluster: log entry %x: %w", it.Key(), err)
		}
		size += uint64(proto.Size(e))
		if len(out) > 0 && size > maxSize {
			break
		}
		out = append(out, e)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if len(out) == 0 || out[0].GetIndex() != lo {
		return nil, raft.ErrUnavailable
	}
	return out, nil
}

func (s *logStore) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case i == s.snapIndex:
		return s.snapTerm, nil
	case i < s.snapIndex:
		return 0, raft.ErrCompacted
	case i > s.snapIndex+uint64(len(s.terms)):
		return 0, raft.ErrUnavailable
	}
	return s.terms[i-s.snapIndex-1], nil
}

func (s *logStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapIndex + uint64(len(s.terms)), nil
}

func (s *logStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapIndex + 1, nil
}

// Snapshot describes the state at the compaction point: a replica that
// needs the entries before it fetches a checkpoint of the collection from
// this node (its Data, a snapshotRef), which holds every entry up to it.
func (s *logStore) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snapIndex == 0 || s.snapData == nil {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return &raftpb.Snapshot{Data: s.snapData, Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(s.snapIndex), Term: proto.Uint64(s.snapTerm), ConfState: proto.CloneOf(s.cs)}}, nil
}

// logLen returns the number of entries in the log and their stored bytes.
func (s *logStore) logLen() (int, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.terms), s.bytes
}

// compact deletes the entries up to index to (applied already), which
// becomes the compaction point, in one batch without a sync: a compaction
// lost in a crash leaves entries that are simply compacted again.
func (s *logStore) compact(to uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to <= s.snapIndex {
		return nil
	}
	if last := s.snapIndex + uint64(len(s.terms)); to > last {
		return fmt.Errorf("cluster: compacting to %d past the log's last entry %d", to, last)
	}
	n := to - s.snapIndex
	term := s.terms[n-1]
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(s.entryKey(s.snapIndex+1), s.entryKey(to+1), nil); err != nil {
		return err
	}
	if err := b.Set(s.key('c'), binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, to), term), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	for _, sz := range s.sizes[:n] {
		s.bytes -= uint64(sz)
	}
	s.terms, s.sizes = slices.Clone(s.terms[n:]), slices.Clone(s.sizes[n:])
	s.snapIndex, s.snapTerm = to, term
	return nil
}

// applySnapshot makes the log start after a received snapshot (its
// checkpoint received into the folder dir of the node's snapshot folder):
// the whole log is deleted, the compaction point and the commit index set
// to the snapshot's, and an install record written, in one synced batch.
// The applier then installs the checkpoint into the collection and
// deletes the record with the applied index set (installed); a node that
// stops in between installs it again when it starts (openLog,
// installing), from the same folder.
func (s *logStore) applySnapshot(meta *raftpb.SnapshotMetadata, dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	index, term := meta.GetIndex(), meta.GetTerm()
	hs := proto.CloneOf(s.hs)
	if hs.GetCommit() < index {
		hs.Commit = proto.Uint64(index)
	}
	hv, err := proto.Marshal(hs)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(s.key('e'), s.key('e'+1), nil); err != nil {
		return err
	}
	point := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, index), term)
	if err := b.Set(s.key('c'), point, nil); err != nil {
		return err
	}
	if err := b.Set(s.key('i'), append(slices.Clone(point), dir...), nil); err != nil {
		return err
	}
	if err := b.Set(s.key('h'), hv, nil); err != nil {
		return err
	}
	cs := meta.GetConfState()
	if cs != nil {
		cv, err := proto.Marshal(cs)
		if err != nil {
			return err
		}
		if err := b.Set(s.key('k'), cv, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	if cs != nil {
		s.cs = proto.CloneOf(cs)
	}
	s.snapIndex, s.snapTerm = index, term
	s.terms, s.sizes, s.bytes = nil, nil, 0
	s.hs = hs
	return nil
}

// setConf records the configuration after a conf change, synced, before
// the entries after it are applied (applying the change again after a
// crash is harmless: adding a member twice or removing an absent one
// changes nothing).
func (s *logStore) setConf(cs *raftpb.ConfState) error {
	v, err := proto.Marshal(cs)
	if err != nil {
		return err
	}
	if err := s.db.Set(s.key('k'), v, pebble.Sync); err != nil {
		return err
	}
	s.mu.Lock()
	s.cs = proto.CloneOf(cs)
	s.mu.Unlock()
	return nil
}

// conf returns the current configuration.
func (s *logStore) conf() *raftpb.ConfState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.CloneOf(s.cs)
}

// installed records a snapshot's install done: the applied index is its
// index and the install record goes, in one synced batch.
func (s *logStore) installed(index uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(s.key('i'), nil); err != nil {
		return err
	}
	if err := b.Set(s.key('a'), binary.BigEndian.AppendUint64(nil, index), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// save writes a Ready's entries (replacing any conflicting suffix) and
// hard state in one batch, synced when Raft needs it to be.
func (s *logStore) save(ents []*raftpb.Entry, hs *raftpb.HardState, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	last := s.snapIndex + uint64(len(s.terms))
	terms, sizes, bytes := s.terms, s.sizes, s.bytes
	if len(ents) > 0 {
		first := ents[0].GetIndex()
		if first <= s.snapIndex || first > last+1 {
			return fmt.Errorf("cluster: appending entry %d to a log of entries %d to %d", first, s.snapIndex+1, last)
		}
		if first <= last {
			if err := b.DeleteRange(s.entryKey(first), s.entryKey(last+1), nil); err != nil {
				return err
			}
		}
		keep := first - s.snapIndex - 1
		for _, sz := range sizes[keep:] {
			bytes -= uint64(sz)
		}
		// Clipped: appending must not write into the arrays the old
		// slices share.
		terms, sizes = slices.Clip(terms[:keep]), slices.Clip(sizes[:keep])
		for _, e := range ents {
			v, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			rec := append(binary.BigEndian.AppendUint64(nil, e.GetTerm()), v...)
			if err := b.Set(s.entryKey(e.GetIndex()), rec, nil); err != nil {
				return err
			}
			terms = append(terms, e.GetTerm())
			sizes = append(sizes, uint32(len(rec)))
			bytes += uint64(len(rec))
		}
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		v, err := proto.Marshal(hs)
		if err != nil {
			return err
		}
		if err := b.Set(s.key('h'), v, nil); err != nil {
			return err
		}
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := b.Commit(opts); err != nil {
		return err
	}
	s.terms, s.sizes, s.bytes = terms, sizes, bytes
	if hs != nil && !raft.IsEmptyHardState(hs) {
		s.hs = proto.CloneOf(hs)
	}
	return nil
}

// setApplied records the applied index without a sync: the collection's
// own writes are synced before it, and a lost record only means entries
// applied again at the next start, which is harmless (see apply).
func (s *logStore) setApplied(i uint64) error {
	return s.db.Set(s.key('a'), binary.BigEndian.AppendUint64(nil, i), pebble.NoSync)
}

// drop deletes the group's records.
func (s *logStore) drop() error {
	end := append([]byte(nil), s.prefix...)
	end[len(end)-1]++ // '/' + 1: past every key of the group
	return s.db.DeleteRange(s.prefix, end, pebble.Sync)
}
