package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
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
//	g/<group>/e<index, 8 bytes> term (8 bytes, big-endian), then the Entry (proto)
//
// It implements raft.Storage. The log is never compacted (there are no
// snapshots yet), so FirstIndex is 1 and a replica that was down catches
// up from the log alone. The configuration is not stored: it is the
// shard's replicas in the catalog, which do not change yet. The terms of
// all entries are kept in memory (8 bytes an entry) for Term and
// LastIndex; entries are read from Pebble.
type logStore struct {
	db     *pebble.DB
	prefix []byte

	mu    sync.Mutex
	hs    *raftpb.HardState
	cs    *raftpb.ConfState
	terms []uint64 // terms[i-1] is the term of entry i
}

func groupPrefix(group string) []byte { return []byte("g/" + group + "/") }

func (s *logStore) key(suffix byte) []byte {
	return append(append([]byte(nil), s.prefix...), suffix)
}

func (s *logStore) entryKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(s.key('e'), i)
}

// openLog loads a group's log (empty for a new group) and returns its
// applied index.
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
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: s.key('e'), UpperBound: s.key('e' + 1)})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		want := uint64(len(s.terms)) + 1
		if len(k) != len(s.prefix)+9 || binary.BigEndian.Uint64(k[len(s.prefix)+1:]) != want || len(v) < 8 {
			return nil, 0, fmt.Errorf("cluster: group %s: log entry key %x: want entry %d", group, k, want)
		}
		s.terms = append(s.terms, binary.BigEndian.Uint64(v))
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	if c := s.hs.GetCommit(); c > uint64(len(s.terms)) || applied > c {
		return nil, 0, fmt.Errorf("cluster: group %s: commit %d and applied %d past the log's %d entries", group, c, applied, len(s.terms))
	}
	return s, applied, nil
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
	last := uint64(len(s.terms))
	s.mu.Unlock()
	if lo < 1 {
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
	if i == 0 {
		return 0, nil
	}
	if i > uint64(len(s.terms)) {
		return 0, raft.ErrUnavailable
	}
	return s.terms[i-1], nil
}

func (s *logStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.terms)), nil
}

func (s *logStore) FirstIndex() (uint64, error) { return 1, nil }

func (s *logStore) Snapshot() (*raftpb.Snapshot, error) {
	return nil, raft.ErrSnapshotTemporarilyUnavailable
}

// save writes a Ready's entries (replacing any conflicting suffix) and
// hard state in one batch, synced when Raft needs it to be.
func (s *logStore) save(ents []*raftpb.Entry, hs *raftpb.HardState, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	last := uint64(len(s.terms))
	terms := s.terms
	if len(ents) > 0 {
		first := ents[0].GetIndex()
		if first < 1 || first > last+1 {
			return fmt.Errorf("cluster: appending entry %d to a log of %d", first, last)
		}
		if first <= last {
			if err := b.DeleteRange(s.entryKey(first), s.entryKey(last+1), nil); err != nil {
				return err
			}
		}
		terms = terms[:first-1]
		for _, e := range ents {
			v, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Set(s.entryKey(e.GetIndex()), append(binary.BigEndian.AppendUint64(nil, e.GetTerm()), v...), nil); err != nil {
				return err
			}
			terms = append(terms, e.GetTerm())
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
	s.terms = terms
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
