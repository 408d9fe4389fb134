package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/rpcerr"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// group is this node's replica of one shard: a Raft node over the
// shard's replicas whose committed entries (ReplicatedWrite) are applied,
// in log order, to the shard's local collection.
//
// Three goroutines: the Raft loop (ticks, proposals, messages in, Ready:
// save, send, hand committed entries on), the applier, and the sender
// per peer node (Replicas.sendLoop). A write is proposed on the leader
// only (a follower refuses it as Unavailable and the router retries at
// the leader) and answered once its entry is applied on the leader, that
// is after a majority saved it (synced) and the leader's apply succeeded.
//
// Applying again is harmless: every entry sets the state of the items it
// names (an upsert replaces them, a delete removes them, an attribute
// update sets and unsets names), so replaying any suffix of the log in
// order over a state that already holds part of it ends in the same
// state. That is why the applied index is recorded after the collection's
// (synced) write without being atomic with it.
type group struct {
	r     *Replicas
	name  string // the shard's local collection
	key   string // the group's name: name@uid
	coll  string
	uid   string
	shard int
	peers atomic.Pointer[map[uint64]string] // node IDs by Raft ID (the shard's members), replaced when the catalog changes
	self  uint64
	st    *logStore
	rn    *raft.RawNode

	propC  chan proposal
	readC  chan readRequest
	recvC  chan *raftpb.Message
	applyC chan applyJob
	quit   chan struct{}
	dead   chan struct{} // closed when the Raft loop ends (stop, or a failure)
	wg     sync.WaitGroup
	once   sync.Once

	nextID atomic.Uint64
	wmu    sync.Mutex
	wait   map[uint64]chan applied
	reads  map[uint64]chan readIndex // by read request ID (nextID too)

	// Snapshots (snapshot.go): reportC carries the outcome of a
	// checkpoint this node served to the Raft loop (the leader's), which
	// tracks the snapshots it sent in snapSent (loop only); compactC asks
	// the loop to compact the log up to an applied index; fetching is set
	// while a received snapshot's checkpoint is being fetched; staged
	// holds fetched checkpoints' folder names by index (under smu).
	reportC  chan snapReport
	compactC chan uint64
	snapSent map[uint64]time.Time // by peer; zero time: its checkpoint is being served
	fetching atomic.Bool

	// A replica move (Shard.Move), driven by the leader's Raft loop:
	// moveWait spaces its steps (a conf change must commit before the
	// next); publishing is set while the finished move is written to the
	// catalog.
	moveWait   time.Time
	moveConf   *raftpb.ConfState // the configuration when the last step was taken
	publishing atomic.Bool

	smu      sync.Mutex
	staged   map[uint64]string
	status   GroupStatus
	advanced chan struct{} // closed and replaced when Applied grows
	failed   error         // an apply failed for a reason not the request's: applying stopped
}

type proposal struct {
	data []byte
	done chan error
}

// readRequest asks the Raft loop for a read index.
type readRequest struct {
	id   uint64
	done chan error
}

// readIndex is a read index's outcome.
type readIndex struct {
	index uint64
	err   error
}

// applyJob is what the applier applies next: committed entries, or a
// received snapshot to install (before any entry after it).
type applyJob struct {
	ents []*raftpb.Entry
	snap *raftpb.SnapshotMetadata
	dir  string // the snapshot's checkpoint folder (in the snapshot folder)
}

// snapReport is the outcome of a checkpoint served to a peer.
type snapReport struct {
	to      uint64
	ok      bool
	started bool // serving began: no timeout from now on
}

// applied is a write's outcome on the replica that proposed it.
type applied struct {
	resp proto.Message
	err  error
}

func (r *Replicas) startGroup(m ShardMap, k int) (*group, error) {
	s := m.Shards[k]
	// The configuration at the start, unless the log recorded a later one:
	// the replicas, also for a move's target (not one of them, so it
	// never campaigns): it replays the leader's conf changes (adding
	// itself as a learner, then as a voter) over it, or takes the
	// configuration of a snapshot. (Replaying a conf change of an older
	// move over today's replicas passes through a state that the next
	// change of that move corrects.)
	voters := slices.Clone(s.peerIDs())
	key := groupName(m, k)
	if s.Move != nil && s.Move.To == r.node.ID() {
		if err := r.ensureCollection(m, k); err != nil {
			return nil, err
		}
	}
	st, appliedIndex, err := openLog(r.rdb, key, voters)
	if err != nil {
		return nil, err
	}
	st.snapData = r.snapRef
	g := &group{r: r, name: ShardName(m.Name, k), key: key, coll: m.Name, uid: m.UID, shard: k,
		self: peerID(s, r.node.ID()), st: st,
		propC: make(chan proposal), readC: make(chan readRequest), reads: map[uint64]chan readIndex{}, advanced: make(chan struct{}), recvC: make(chan *raftpb.Message, 4096), applyC: make(chan applyJob, 256),
		reportC: make(chan snapReport, 16), compactC: make(chan uint64, 1), snapSent: map[uint64]time.Time{}, staged: map[uint64]string{},
		quit: make(chan struct{}), dead: make(chan struct{}), wait: map[uint64]chan applied{}}
	// A snapshot install the node did not finish is finished first: Raft
	// starts from the log after it.
	if index, _, dir, ok, err := st.installing(); err != nil {
		return nil, fmt.Errorf("cluster: group %s: %w", key, err)
	} else if ok {
		r.log.Info("cluster: finishing a snapshot install", "group", key, "index", index)
		if err := g.install(index, dir); err != nil {
			return nil, fmt.Errorf("cluster: group %s: installing snapshot %d: %w", key, index, err)
		}
		appliedIndex = index
	}
	g.setPeers(s)
	g.nextID.Store(randUint64())
	g.status.Applied, g.status.Commit = appliedIndex, st.hs.GetCommit()
	g.rn, err = raft.NewRawNode(&raft.Config{
		ID: g.self, ElectionTick: electionTicks, HeartbeatTick: 1, Storage: st, Applied: appliedIndex,
		MaxSizePerMsg: 4 << 20, MaxInflightMsgs: 64, MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum: true, PreVote: true, Logger: raftLogger{r.log.With("group", key)},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: group %s: %w", key, err)
	}
	g.wg.Add(2)
	go g.loop()
	go g.applier()
	return g, nil
}

// moveStep takes a replica move (Shard.Move) one step further on the
// leader (Raft loop only): the target is added as a learner; once it has
// caught up it is promoted to a voter; the source is removed (when it is
// this node, the leadership goes to the target first); then the catalog
// records the move done (publishMove). Each step waits for the previous
// conf change to take effect (moveWait), and a new leader goes on where
// the old one stopped, from the configuration.
func (g *group) moveStep() {
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		return
	}
	cs := g.st.conf()
	if time.Now().Before(g.moveWait) && proto.Equal(cs, g.moveConf) {
		return // the last step has not taken effect yet
	}
	m, ok := g.r.node.View().Collection(g.coll)
	if !ok || m.UID != g.uid || g.shard >= len(m.Shards) || m.Shards[g.shard].Move == nil {
		return
	}
	s := m.Shards[g.shard]
	mv := s.Move
	to, from := mv.Peer, peerID(Shard{Replicas: s.Replicas, Peers: s.Peers}, mv.From)
	if to == 0 || from == 0 {
		return
	}
	g.moveConf = cs
	propose := func(t raftpb.ConfChangeType, id uint64) {
		g.moveWait = time.Now().Add(time.Second)
		cc := &raftpb.ConfChange{Type: t.Enum(), NodeId: proto.Uint64(id)}
		if err := g.rn.ProposeConfChange(cc); err != nil {
			g.r.log.Warn("cluster: proposing a conf change", "group", g.key, "change", t.String(), "peer", id, "err", err)
			return
		}
		g.r.log.Info("cluster: moving a shard replica", "group", g.key, "from", mv.From, "to", mv.To, "change", t.String(), "peer", id)
	}
	switch {
	case !slices.Contains(cs.GetVoters(), to) && !slices.Contains(cs.GetLearners(), to):
		propose(raftpb.ConfChangeAddLearnerNode, to)
	case slices.Contains(cs.GetLearners(), to):
		// Promoted once it holds nearly all the log (a learner that is
		// still far behind would slow the commits of the voters).
		st := g.rn.Status()
		if pr, ok := st.Progress[to]; ok && pr.Match+moveCatchUpEntries >= st.GetCommit() {
			propose(raftpb.ConfChangeAddNode, to)
		}
	case slices.Contains(cs.GetVoters(), from):
		if from == g.self {
			g.moveWait = time.Now().Add(2 * time.Second)
			g.rn.TransferLeader(to)
			g.r.log.Info("cluster: moving the leadership off a replica being moved", "group", g.key, "to", mv.To)
			return
		}
		propose(raftpb.ConfChangeRemoveNode, from)
	default:
		if g.publishing.CompareAndSwap(false, true) {
			g.moveWait = time.Now().Add(time.Second)
			term := g.rn.BasicStatus().GetTerm()
			g.r.wg.Add(1)
			go func() {
				defer g.r.wg.Done()
				defer g.publishing.Store(false)
				g.r.publishMove(g, *mv, term)
			}()
		}
	}
}

// moveCatchUpEntries: a move's learner is promoted once it is at most this
// many entries behind the commit index.
const moveCatchUpEntries = 8

// setPeers takes the shard's members from its catalog record.
func (g *group) setPeers(s Shard) {
	m := s.members()
	g.peers.Store(&m)
}

// peer returns the node of a Raft ID.
func (g *group) peer(id uint64) (string, bool) {
	n, ok := (*g.peers.Load())[id]
	return n, ok
}

// stop ends the group's goroutines and fails its waiting writes.
func (g *group) stop() {
	g.once.Do(func() { close(g.quit) })
	g.wg.Wait()
	err := g.errStopped()
	g.failWaiting(err)
	g.failReads(err)
}

// leads reports whether the group leads in term.
func (g *group) leads(term uint64) bool {
	g.smu.Lock()
	defer g.smu.Unlock()
	return g.status.Leader && g.status.Term == term
}

func (g *group) loop() {
	defer g.wg.Done()
	defer close(g.dead)
	defer close(g.applyC)
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	for {
		select {
		case <-g.quit:
			return
		case <-tick.C:
			g.rn.Tick()
			if len(g.snapSent) > 0 {
				prs := g.rn.Status().Progress
				for to, at := range g.snapSent {
					switch {
					case prs[to].State != tracker.StateSnapshot:
						delete(g.snapSent, to) // the receiver installed it and answered
					case !at.IsZero() && time.Since(at) > snapshotFetchTimeout:
						// A snapshot message lost, a receiver that never
						// fetched or never installed: Raft sends another
						// after a failure report.
						g.rn.ReportSnapshot(to, raft.SnapshotFailure)
						delete(g.snapSent, to)
					}
				}
			}
			g.moveStep()
		case rep := <-g.reportC:
			switch {
			case rep.started:
				g.snapSent[rep.to] = time.Time{}
			case rep.ok:
				// Sent: the receiver installs it and answers, which
				// ends the snapshot state in Raft (a report of success
				// now would make Raft send entries the receiver cannot
				// take yet, and then another snapshot).
				g.snapSent[rep.to] = time.Now().Add(snapshotInstallGrace)
			default:
				g.rn.ReportSnapshot(rep.to, raft.SnapshotFailure)
				delete(g.snapSent, rep.to)
			}
		case applied := <-g.compactC:
			g.maybeCompact(applied)
		case p := <-g.propC:
			if g.rn.BasicStatus().RaftState != raft.StateLeader {
				p.done <- g.errNotLeader()
			} else if err := g.rn.Propose(p.data); err != nil {
				p.done <- status.Errorf(codes.Unavailable, "shard %d of collection %q: proposing: %v", g.shard, g.coll, err)
			} else {
				p.done <- nil
			}
		case rq := <-g.readC:
			if g.rn.BasicStatus().RaftState != raft.StateLeader {
				rq.done <- g.errNotLeader()
			} else {
				g.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, rq.id))
				rq.done <- nil
			}
		case m := <-g.recvC:
			g.rn.Step(m) // a message of another term or group state is ignored
		}
		for g.rn.HasReady() {
			if err := g.ready(g.rn.Ready()); err != nil {
				g.r.log.Error("cluster: shard replica stops: saving its Raft log", "group", g.key, "err", err)
				g.smu.Lock()
				g.failed = fmt.Errorf("saving the Raft log: %w", err) // writes are refused from now on
				g.status.Leader = false
				g.smu.Unlock()
				err := status.Errorf(codes.Unavailable, "shard %d of collection %q: the replica on node %q stopped: saving its Raft log: %v", g.shard, g.coll, g.r.node.ID(), err)
				g.failWaiting(err)
				g.failReads(err)
				return
			}
		}
	}
}

// ready handles one Ready: the log and hard state are saved (synced)
// before the messages go out, then committed entries go to the applier.
func (g *group) ready(rd raft.Ready) error {
	if rd.SoftState != nil {
		bs := g.rn.BasicStatus()
		lead := rd.SoftState.RaftState == raft.StateLeader
		g.smu.Lock()
		was := g.status.Leader
		g.status.Leader, g.status.Term = lead, bs.GetTerm()
		g.smu.Unlock()
		if was && !lead {
			g.failReads(status.Errorf(codes.Unavailable, "shard %d of collection %q: node %q lost the leadership during a strong read; retry", g.shard, g.coll, g.r.node.ID()))
			g.failWaiting(status.Errorf(codes.Unavailable, "shard %d of collection %q: node %q lost the leadership while the write was in flight (it may or may not be applied); retry", g.shard, g.coll, g.r.node.ID()))
		}
		if lead && !was {
			// Raft appended an empty entry of the new term on becoming
			// the leader: the last of the log (this Ready's entries end
			// with it, or it is saved already).
			from, _ := g.st.LastIndex()
			if n := len(rd.Entries); n > 0 {
				from = rd.Entries[n-1].GetIndex()
			}
			g.r.wg.Add(1)
			go g.r.publishLeader(g, bs.GetTerm(), from)
		}
	}
	for _, rs := range rd.ReadStates {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		id := binary.BigEndian.Uint64(rs.RequestCtx)
		g.wmu.Lock()
		if ch, ok := g.reads[id]; ok {
			ch <- readIndex{index: rs.Index}
			delete(g.reads, id)
		}
		g.wmu.Unlock()
	}
	var snapJob *applyJob
	if !raft.IsEmptySnap(rd.Snapshot) {
		meta := rd.Snapshot.GetMetadata()
		g.smu.Lock()
		dir, ok := g.staged[meta.GetIndex()]
		delete(g.staged, meta.GetIndex())
		g.smu.Unlock()
		if !ok {
			return fmt.Errorf("snapshot at index %d: its checkpoint was not received", meta.GetIndex())
		}
		if err := g.st.applySnapshot(meta, dir); err != nil {
			return err
		}
		snapJob = &applyJob{snap: meta, dir: dir}
	}
	if err := g.st.save(rd.Entries, rd.HardState, raft.MustSync(rd.HardState, g.st.hs, len(rd.Entries))); err != nil {
		return err
	}
	if rd.HardState != nil && rd.HardState.GetCommit() > 0 {
		g.smu.Lock()
		g.status.Commit = rd.HardState.GetCommit()
		g.smu.Unlock()
	}
	for _, m := range rd.Messages {
		to := m.GetTo()
		node, ok := g.peer(to)
		if !ok {
			continue
		}
		data, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		if m.GetType() == raftpb.MsgSnap {
			g.snapSent[to] = time.Now()
		}
		g.r.send(node, &pb.RaftMessage{Group: g.key, Message: data})
	}
	if snapJob != nil {
		select {
		case g.applyC <- *snapJob:
		case <-g.quit:
			return nil
		}
	}
	// Conf changes take effect as they commit (the configuration is
	// recorded before any later entry is applied).
	for _, e := range rd.CommittedEntries {
		var cc raftpb.ConfChangeI
		switch e.GetType() {
		case raftpb.EntryConfChange:
			c := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), c); err != nil {
				return fmt.Errorf("conf change entry %d: %w", e.GetIndex(), err)
			}
			cc = c
		case raftpb.EntryConfChangeV2:
			c := &raftpb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), c); err != nil {
				return fmt.Errorf("conf change entry %d: %w", e.GetIndex(), err)
			}
			cc = c
		default:
			continue
		}
		cs := g.rn.ApplyConfChange(cc)
		if err := g.st.setConf(cs); err != nil {
			return err
		}
		g.r.log.Info("cluster: shard replicas changed", "group", g.key, "index", e.GetIndex(), "voters", cs.GetVoters(), "learners", cs.GetLearners())
	}
	if len(rd.CommittedEntries) > 0 {
		select {
		case g.applyC <- applyJob{ents: rd.CommittedEntries}:
		case <-g.quit:
			return nil
		}
	}
	g.rn.Advance(rd)
	return nil
}

// register files a one-answer channel under id in m (g.wait or g.reads,
// both guarded by g.wmu); forget takes it out again when the caller stops
// waiting.
func register[T any](g *group, m map[uint64]chan T, id uint64) (ch chan T, forget func()) {
	ch = make(chan T, 1)
	g.wmu.Lock()
	m[id] = ch
	g.wmu.Unlock()
	return ch, func() {
		g.wmu.Lock()
		delete(m, id)
		g.wmu.Unlock()
	}
}

// write proposes w and waits until it is applied here.
func (g *group) write(ctx context.Context, w *pb.ReplicatedWrite) (proto.Message, error) {
	g.smu.Lock()
	lead, failed := g.status.Leader, g.failed
	g.smu.Unlock()
	if failed != nil {
		return nil, status.Errorf(codes.Unavailable, "shard %d of collection %q: the replica on node %q stopped applying: %v", g.shard, g.coll, g.r.node.ID(), failed)
	}
	if !lead {
		return nil, g.errNotLeader()
	}
	id := g.nextID.Add(1)
	w.Proposal = id
	data, err := proto.Marshal(w)
	if err != nil {
		return nil, err
	}
	ch, forget := register(g, g.wait, id)
	p := proposal{data: data, done: make(chan error, 1)}
	select {
	case g.propC <- p:
	case <-g.dead:
		forget()
		return nil, g.errStopped()
	case <-ctx.Done():
		forget()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err := <-p.done; err != nil {
		forget()
		return nil, err
	}
	select {
	case a := <-ch:
		return a.resp, a.err
	case <-ctx.Done():
		forget()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// linearize makes a strong read possible here: the group must lead; it
// confirms its leadership with a majority (a Raft read index) and waits
// until it has applied up to that index, so the local collection holds
// every write acknowledged before the call.
func (g *group) linearize(ctx context.Context) error {
	id := g.nextID.Add(1)
	ch, forget := register(g, g.reads, id)
	rq := readRequest{id: id, done: make(chan error, 1)}
	select {
	case g.readC <- rq:
	case <-g.dead:
		forget()
		return g.errStopped()
	case <-ctx.Done():
		forget()
		return status.FromContextError(ctx.Err()).Err()
	}
	if err := <-rq.done; err != nil {
		forget()
		return err
	}
	var ri readIndex
	select {
	case ri = <-ch:
	case <-ctx.Done():
		forget()
		return status.FromContextError(ctx.Err()).Err()
	}
	if ri.err != nil {
		return ri.err
	}
	for {
		g.smu.Lock()
		done, adv, failed := g.status.Applied >= ri.index, g.advanced, g.failed
		g.smu.Unlock()
		if done {
			return nil
		}
		if failed != nil {
			return status.Errorf(codes.Unavailable, "shard %d of collection %q: the replica on node %q stopped applying: %v", g.shard, g.coll, g.r.node.ID(), failed)
		}
		select {
		case <-adv:
		case <-g.dead:
			return g.errStopped()
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (g *group) failReads(err error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	for id, ch := range g.reads {
		ch <- readIndex{err: err}
		delete(g.reads, id)
	}
}

func (g *group) failWaiting(err error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	for id, ch := range g.wait {
		ch <- applied{err: err}
		delete(g.wait, id)
	}
}

// applier applies committed entries (and installs received snapshots) in
// order and records the applied index after each batch; it asks the Raft
// loop to compact the log when it has grown past the thresholds.
func (g *group) applier() {
	defer g.wg.Done()
	for job := range g.applyC {
		g.smu.Lock()
		failed := g.failed
		g.smu.Unlock()
		if failed != nil {
			if job.snap != nil {
				os.RemoveAll(filepath.Join(g.r.snapDir, job.dir))
			}
			continue
		}
		if job.snap != nil {
			if err := g.install(job.snap.GetIndex(), job.dir); err != nil {
				g.fail(fmt.Errorf("installing snapshot %d: %w", job.snap.GetIndex(), err), job.snap.GetIndex())
				continue
			}
			g.advance(job.snap.GetIndex())
			continue
		}
		var last uint64
		for _, e := range job.ents {
			if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
				if err := g.apply(e); err != nil {
					g.fail(err, e.GetIndex())
					break
				}
			}
			last = e.GetIndex()
		}
		if last == 0 {
			continue
		}
		if err := g.st.setApplied(last); err != nil {
			g.r.log.Error("cluster: recording the applied index", "group", g.key, "err", err)
		}
		g.advance(last)
		if n, b := g.st.logLen(); n > g.r.opts.CompactEntries || b > uint64(g.r.opts.CompactBytes) {
			select {
			case g.compactC <- last:
			default: // one is pending
			}
		}
	}
}

// advance publishes a new applied index.
func (g *group) advance(applied uint64) {
	g.smu.Lock()
	g.status.Applied = applied
	close(g.advanced)
	g.advanced = make(chan struct{})
	g.smu.Unlock()
}

// fail stops applying after a failure that is not the request's.
func (g *group) fail(err error, index uint64) {
	if g.r.ctx.Err() == nil {
		g.r.log.Error("cluster: shard replica stops applying", "group", g.key, "index", index, "err", err)
	}
	g.smu.Lock()
	g.failed = err
	close(g.advanced) // strong reads waiting see the failure
	g.advanced = make(chan struct{})
	g.smu.Unlock()
}

// maybeCompact compacts the log up to KeepEntries before applied (Raft
// loop only).
func (g *group) maybeCompact(applied uint64) {
	if applied <= uint64(g.r.opts.KeepEntries) {
		return
	}
	to := applied - uint64(g.r.opts.KeepEntries)
	// A follower receiving a snapshot continues from the entry after the
	// snapshot's index: those are kept until it has them (else it would
	// need another snapshot, and under a steady write load, forever).
	if g.rn.BasicStatus().RaftState == raft.StateLeader {
		for _, pr := range g.rn.Status().Progress {
			if pr.State == tracker.StateSnapshot && pr.PendingSnapshot < to {
				to = pr.PendingSnapshot
			}
		}
	}
	if err := g.st.compact(to); err != nil {
		g.r.log.Error("cluster: compacting the Raft log", "group", g.key, "err", err)
		return
	}
	g.smu.Lock()
	g.status.Compactions++
	g.smu.Unlock()
}

// install installs the received checkpoint in the snapshot folder's dir
// (snapshot.go) and records index as applied; the folder goes last.
func (g *group) install(index uint64, dir string) error {
	if g.r.db == nil {
		return errors.New("the node has no database to install a snapshot into")
	}
	path := filepath.Join(g.r.snapDir, dir)
	if err := installCheckpoint(g.r.ctx, g.r.db, path, g.name); err != nil {
		return err
	}
	if err := g.st.installed(index); err != nil {
		return err
	}
	g.smu.Lock()
	g.status.Snapshots++
	g.smu.Unlock()
	g.r.log.Info("cluster: installed a snapshot", "group", g.key, "index", index)
	return os.RemoveAll(path)
}

// reportSnapshot and reportSnapshotStarted tell the Raft loop about a
// checkpoint served to peer to.
func (g *group) reportSnapshot(to uint64, ok bool) {
	select {
	case g.reportC <- snapReport{to: to, ok: ok}:
	case <-g.dead:
	}
}

func (g *group) reportSnapshotStarted(to uint64) {
	select {
	case g.reportC <- snapReport{to: to, started: true}:
	case <-g.dead:
	}
}

// receiveSnapshot fetches the checkpoint of a snapshot message from its
// sender, then steps the message into Raft. One at a time per group: a
// message that comes while one is fetched is dropped (the leader sends
// again).
func (g *group) receiveSnapshot(m *raftpb.Message) {
	if !g.fetching.CompareAndSwap(false, true) {
		return
	}
	g.r.wg.Add(1)
	go func() {
		defer g.r.wg.Done()
		index := m.GetSnapshot().GetMetadata().GetIndex()
		from, ok := g.peer(m.GetFrom())
		if !ok || g.r.db == nil {
			g.fetching.Store(false)
			return
		}
		dir := fmt.Sprintf("%s-%d", g.key, index)
		if err := g.fetchSnapshot(from, index, dir); err != nil {
			if g.r.ctx.Err() == nil {
				g.r.log.Warn("cluster: fetching a snapshot", "group", g.key, "index", index, "from", from, "err", err)
			}
			g.fetching.Store(false)
			return
		}
		g.smu.Lock()
		g.staged[index] = dir
		g.smu.Unlock()
		select {
		case g.recvC <- m:
		case <-g.quit:
		}
		g.fetching.Store(false)
		// Raft ignores a snapshot older than its commit index: then
		// nothing takes the folder.
		t := time.NewTimer(stagedTimeout)
		defer t.Stop()
		select {
		case <-t.C:
		case <-g.quit:
			return
		}
		g.smu.Lock()
		d, ok := g.staged[index]
		delete(g.staged, index)
		g.smu.Unlock()
		if ok {
			os.RemoveAll(filepath.Join(g.r.snapDir, d))
		}
	}()
}

// fetchSnapshot fetches a checkpoint from node into the snapshot folder's
// dir.
func (g *group) fetchSnapshot(node string, index uint64, dir string) error {
	n, ok := g.r.node.View().Node(node)
	if !ok {
		return fmt.Errorf("node %q is not live", node)
	}
	cc, err := g.r.node.cc(n.Addr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(g.r.snapDir, 0o755); err != nil {
		return err
	}
	final := filepath.Join(g.r.snapDir, dir)
	part := final + ".part"
	os.RemoveAll(part)
	os.RemoveAll(final)
	ctx, cancel := context.WithCancel(g.r.ctx)
	defer cancel()
	stream, err := pb.NewReplicationServiceClient(cc).FetchSnapshot(ctx, &pb.FetchSnapshotRequest{Group: g.key, Index: index, Node: g.r.node.ID()})
	if err != nil {
		return err
	}
	if err := receiveCheckpoint(stream.Recv, part, g.r.limits); err != nil {
		return err
	}
	if err := os.Rename(part, final); err != nil {
		os.RemoveAll(part)
		return err
	}
	return syncDir(g.r.snapDir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// apply applies one entry to the local collection and answers its
// proposer if it is waiting here. A write the collection refuses for
// itself (the same on every replica, changing nothing: an update of an
// unknown item) is answered with that error and the log goes on; any
// other failure (the disk, the node stopping) stops applying and is
// returned.
func (g *group) apply(e *raftpb.Entry) error {
	w := &pb.ReplicatedWrite{}
	if err := proto.Unmarshal(e.GetData(), w); err != nil {
		return fmt.Errorf("entry %d: %w", e.GetIndex(), err)
	}
	ctx := g.r.ctx
	var (
		resp proto.Message
		err  error
	)
	switch op := w.GetWrite().(type) {
	case *pb.ReplicatedWrite_Upsert:
		resp, err = g.r.local.UpsertBatch(ctx, op.Upsert)
	case *pb.ReplicatedWrite_LoadDone:
		resp, err = g.loadDone(ctx)
	case *pb.ReplicatedWrite_Delete:
		resp, err = g.r.local.Delete(ctx, op.Delete)
	case *pb.ReplicatedWrite_UpdateAttrs:
		resp, err = g.r.local.UpdateAttrs(ctx, op.UpdateAttrs)
	default:
		return fmt.Errorf("entry %d: no write", e.GetIndex())
	}
	if err != nil {
		if !requestError(err) {
			return err
		}
		err = rpcerr.Status(err) // as one node answers it
	}
	g.wmu.Lock()
	ch, ok := g.wait[w.GetProposal()]
	delete(g.wait, w.GetProposal())
	g.wmu.Unlock()
	if ok {
		ch <- applied{resp: resp, err: err}
	}
	return nil
}

// requestError reports an error a collection gives for the request
// itself, the same on every replica. The local service's errors are the
// core's (the server's interceptor makes them statuses, and it is not
// between the applier and the service): a missing item is one, a missing
// collection is not (the replica lacks its shard). A batch larger than
// the server's whole in-flight budget would be one (nodes run with the
// same budget; one node refuses such a batch too), so that it could not
// stop every replica of a shard from applying; today the service's
// UpsertBatch, which applies upserts, does not take part in the budget.
func requestError(err error) bool {
	if errors.Is(err, wpcdb.ErrCollectionNotFound) {
		return false
	}
	if errors.Is(err, wpcdb.ErrInvalidArgument) || errors.Is(err, wpcdb.ErrNotFound) || errors.Is(err, wpcdb.ErrFailedPrecondition) ||
		errors.Is(err, wpcdb.ErrIncompatible) || errors.Is(err, wpcdb.ErrResourceExhausted) {
		return true
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.OutOfRange, codes.ResourceExhausted:
		return true
	}
	return false
}

// loadDone ends a load as one node ends an Upsert stream (it calibrates
// the first stage when the shard has grown enough): through the local
// service's Upsert, as a stream of one empty batch.
func (g *group) loadDone(ctx context.Context) (*pb.UpsertResponse, error) {
	s := &oneBatch{ctx: ctx, req: &pb.UpsertRequest{Collection: g.name}}
	if err := g.r.local.Upsert(s); err != nil {
		return nil, err
	}
	if s.resp == nil {
		return nil, errors.New("upsert: no answer")
	}
	return s.resp, nil
}

// oneBatch is an Upsert server stream that carries one batch.
type oneBatch struct {
	grpc.ServerStream
	ctx  context.Context
	req  *pb.UpsertRequest
	resp *pb.UpsertResponse
}

func (s *oneBatch) Context() context.Context { return s.ctx }

func (s *oneBatch) Recv() (*pb.UpsertRequest, error) {
	if r := s.req; r != nil {
		s.req = nil
		return r, nil
	}
	return nil, io.EOF
}

func (s *oneBatch) Send(r *pb.UpsertResponse) error {
	s.resp = r
	return nil
}
