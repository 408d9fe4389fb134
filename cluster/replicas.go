package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// Replicas runs this node's shard replicas: one Raft group (etcd's raft
// library) for each shard of more than one replica that lists this node,
// its log in a Pebble database of its own (see logStore), its messages
// over the nodes' ReplicationService. It follows the catalog: a group
// starts when its collection appears in the view (or at start, for a
// node that restarts), and stops and deletes its log when its collection
// leaves the catalog. Safe for concurrent use.
type Replicas struct {
	node    *Node
	rdb     *pebble.DB // the Raft logs
	db      *wpcdb.DB  // the node's collections: snapshots are made of it and installed into it
	opts    ReplicaOptions
	log     *slog.Logger
	local   pb.WPCDBServiceServer
	snapDir string
	snapRef []byte // this node's snapshot Data (snapshotRef)
	limits  snapshotLimits

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	groups map[string]*group // by shard name
	peers  map[string]chan *pb.RaftMessage
	closed bool
}

// RaftDir is the folder of a node's data folder that holds its shards'
// Raft logs (serve in cluster mode).
const RaftDir = "raft"

// Raft timing: a tick every 100 ms, a heartbeat each tick, an election
// after 10 to 20 ticks without one (1–2 s). A dead leader's shard takes
// writes again within about that plus one etcd write.
const (
	tickInterval  = 100 * time.Millisecond
	electionTicks = 10
)

// ReplicaOptions configure a node's replicas. The zero value is valid
// (each field names its default).
type ReplicaOptions struct {
	// DB is the node's database, whose collections hold the shards: a
	// replica that lags behind the others' compacted logs catches up from
	// a checkpoint of another's (snapshot.go). Nil: no snapshots are
	// served or installed, and the log is never compacted.
	DB *wpcdb.DB
	// Logger receives the replicas' messages; nil discards them.
	Logger *slog.Logger
	// SnapshotDir is where checkpoints are made and received; "" is the
	// Raft folder's name with "-snapshots" appended.
	SnapshotDir string
	// CompactEntries and CompactBytes: a group's log is compacted once it
	// holds more entries or bytes than these (0: 10,000 entries, 256 MiB),
	// up to KeepEntries before the applied index (0: 1,000; negative:
	// none kept). A follower that falls further behind than the kept
	// tail catches up from a snapshot: a copy of the whole shard, which
	// is why the log keeps a tail at all. Measured (BenchmarkInstallCheckpoint,
	// 2,000 compact items of 8 × 64 on the shared 2-core machine at load
	// 16–20): installing costs 180–360 CPU-µs a live item (the writes,
	// and the calibration a load ends with), about what replaying an
	// entry costs per item it writes, so a snapshot pays off once the
	// entries a follower misses write more items than the shard holds;
	// 1,000 kept entries (up to 1,000 batches) cover a follower a few
	// seconds behind under a steady load. The byte bound keeps a group's
	// log on disk near 256 MiB (with full 4 MiB batches, about 64 of
	// them); the entry bound keeps the in-memory index of terms (12 bytes
	// an entry) small when entries are small.
	CompactEntries int
	CompactBytes   int64
	KeepEntries    int
	// MaxSnapshotBytes bounds a received snapshot (all of its files); 0
	// is DefaultMaxSnapshotBytes (1 TiB).
	MaxSnapshotBytes int64
}

func (o ReplicaOptions) withDefaults(dir string) ReplicaOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SnapshotDir == "" {
		o.SnapshotDir = filepath.Clean(dir) + "-snapshots"
	}
	if o.CompactEntries == 0 {
		o.CompactEntries = 10_000
	}
	if o.CompactBytes == 0 {
		o.CompactBytes = 256 << 20
	}
	if o.KeepEntries == 0 {
		o.KeepEntries = 1_000
	}
	if o.KeepEntries < 0 {
		o.KeepEntries = 0
	}
	if o.DB == nil {
		// Nothing to send a follower that lacks the compacted entries.
		o.CompactEntries, o.CompactBytes = math.MaxInt, math.MaxInt64
	}
	return o
}

// OpenReplicas opens (or creates) the Raft database in dir; Start, after
// SetLocal, starts the groups. Leftovers of snapshot transfers a crash
// cut short are deleted (a checkpoint being installed is kept).
func OpenReplicas(n *Node, dir string, opts ReplicaOptions) (*Replicas, error) {
	opts = opts.withDefaults(dir)
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the Raft log in %s: %w", dir, err)
	}
	ref, err := json.Marshal(snapshotRef{Node: n.ID()})
	if err != nil {
		db.Close()
		return nil, err
	}
	r := &Replicas{node: n, rdb: db, db: opts.DB, opts: opts, log: opts.Logger, snapDir: opts.SnapshotDir, snapRef: ref,
		limits: snapshotLimits{maxBytes: opts.MaxSnapshotBytes}, groups: map[string]*group{}, peers: map[string]chan *pb.RaftMessage{}}
	if err := r.cleanSnapshots(); err != nil {
		db.Close()
		return nil, err
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// cleanSnapshots deletes what the snapshot folder holds apart from the
// checkpoints of installs recorded in the Raft database.
func (r *Replicas) cleanSnapshots() error {
	entries, err := os.ReadDir(r.snapDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	it, err := r.rdb.NewIter(&pebble.IterOptions{LowerBound: []byte("g/"), UpperBound: []byte("g0")})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) > 2 && k[len(k)-1] == 'i' && k[len(k)-2] == '/' && len(it.Value()) > 16 {
			keep[string(it.Value()[16:])] = true
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(r.snapDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetLocal gives the node's local service: committed writes are applied
// to the shards' local collections through it.
func (r *Replicas) SetLocal(local pb.WPCDBServiceServer) { r.local = local }

// Register registers the ReplicationService on the node's gRPC server.
func (r *Replicas) Register(s grpc.ServiceRegistrar) {
	pb.RegisterReplicationServiceServer(s, transport{r: r})
}

// Start drops what moved off this node while it was down (dropMovedAway),
// starts the groups of the current catalog and follows its changes.
func (r *Replicas) Start() {
	r.dropMovedAway()
	r.wg.Add(2)
	go r.publishApplied()
	go func() {
		defer r.wg.Done()
		v := r.node.View()
		for {
			ch := v.Changed()
			r.reconcile()
			select {
			case <-ch:
			case <-r.ctx.Done():
				return
			}
		}
	}()
}

// dropMovedAway deletes, when the node starts, the copies and Raft logs of
// replicated shards that moved off this node while it was down (`cluster
// replace`): the catalog lists the shard, not this node among its
// replicas or as a move's target. (A running node drops them when the
// move completes, in reconcile.)
func (r *Replicas) dropMovedAway() {
	if r.db == nil {
		return
	}
	have := map[string]bool{}
	if infos, err := r.db.ListCollections(); err == nil {
		for _, c := range infos {
			have[c.Name] = true
		}
	}
	for _, m := range r.node.View().Collections() {
		for k, s := range m.Shards {
			if len(s.Replicas) < 2 || peerID(s, r.node.ID()) != 0 {
				continue
			}
			if name := ShardName(m.Name, k); have[name] {
				r.log.Info("cluster: dropping a replica moved off this node while it was down", "collection", name)
				if err := r.db.DropCollection(r.ctx, name); err != nil && !errors.Is(err, wpcdb.ErrCollectionNotFound) {
					r.log.Error("cluster: dropping a moved replica's copy", "collection", name, "err", err)
				}
			}
			st := &logStore{db: r.rdb, prefix: groupPrefix(groupName(m, k))}
			if err := st.drop(); err != nil {
				r.log.Error("cluster: deleting a moved replica's Raft log", "group", groupName(m, k), "err", err)
			}
		}
	}
}

// publishApplied puts the replicas' applied indexes in etcd (under the
// node's lease) about every second when they change, for the lag that
// `cluster status` prints.
func (r *Replicas) publishApplied() {
	defer r.wg.Done()
	key := r.node.prefix + appliedDir + r.node.ID()
	var (
		last      string
		lastLease clientv3.LeaseID
	)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		a := map[string]uint64{}
		r.mu.Lock()
		for name, g := range r.groups {
			g.smu.Lock()
			a[name] = g.status.Applied
			g.smu.Unlock()
		}
		r.mu.Unlock()
		val, err := json.Marshal(a)
		if err != nil {
			continue
		}
		lease := r.node.leaseID()
		if string(val) == last && lease == lastLease {
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.node.opts.DialTimeout)
		_, err = r.node.etcd.Put(ctx, key, string(val), clientv3.WithLease(lease))
		cancel()
		if err == nil {
			last, lastLease = string(val), lease
		}
	}
}

// groupName names a shard's Raft group: its local collection's name and
// the collection's UID.
func groupName(m ShardMap, k int) string { return ShardName(m.Name, k) + "@" + m.UID }

// reconcile starts the groups the catalog gives this node and stops (and
// deletes) those of collections no longer in it.
func (r *Replicas) reconcile() {
	want := map[string]ShardMap{}
	for _, m := range r.node.View().Collections() {
		for k, s := range m.Shards {
			if len(s.Replicas) > 1 && peerID(s, r.node.ID()) != 0 {
				want[groupName(m, k)] = m
			}
		}
	}
	var dropped []*group
	defer func() {
		// Outside r.mu: a group's loop takes it to send.
		for _, g := range dropped {
			r.log.Info("cluster: stopping a dropped shard's replica", "group", g.key)
			g.stop()
			if err := g.st.drop(); err != nil {
				r.log.Error("cluster: deleting a dropped shard's Raft log", "group", g.key, "err", err)
			}
			// A replica moved away (its collection still in the catalog)
			// drops its copy; a dropped collection's copies are dropped
			// by the drop.
			if m, ok := r.node.View().Collection(g.coll); ok && m.UID == g.uid && r.db != nil {
				if err := r.db.DropCollection(r.ctx, g.name); err != nil && !errors.Is(err, wpcdb.ErrCollectionNotFound) {
					r.log.Error("cluster: dropping a moved replica's copy", "collection", g.name, "err", err)
				}
			}
		}
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for name, g := range r.groups {
		if _, ok := want[g.key]; !ok {
			delete(r.groups, name)
			dropped = append(dropped, g)
		}
	}
	for key, m := range want {
		for k := range m.Shards {
			if groupName(m, k) != key {
				continue
			}
			name := ShardName(m.Name, k)
			if g, ok := r.groups[name]; ok {
				g.setPeers(m.Shards[k])
				continue
			}
			g, err := r.startGroup(m, k)
			if err != nil {
				r.log.Error("cluster: starting a shard replica", "group", key, "err", err)
				continue
			}
			r.groups[name] = g
		}
	}
}

// peerID is node's Raft ID in shard s, 0 when it is neither a replica nor
// a move's target.
func peerID(s Shard, node string) uint64 {
	for id, n := range s.members() {
		if n == node {
			return id
		}
	}
	return 0
}

// group returns the replica of the shard whose local collection is name.
func (r *Replicas) group(name string) *group {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.groups[name]
}

// GroupStatus is one replica's state, for tests and status.
type GroupStatus struct {
	Leader      bool
	Term        uint64
	Commit      uint64
	Applied     uint64
	First       uint64 // the log's first entry (after its compaction point)
	Last        uint64
	Compactions int // log compactions since the group started
	Snapshots   int // snapshots installed since the group started
}

// Status returns the state of this node's replica of the shard whose
// local collection is name.
func (r *Replicas) Status(name string) (GroupStatus, bool) {
	g := r.group(name)
	if g == nil {
		return GroupStatus{}, false
	}
	g.smu.Lock()
	defer g.smu.Unlock()
	st := g.status
	st.First, _ = g.st.FirstIndex()
	st.Last, _ = g.st.LastIndex()
	return st, true
}

// Close stops every group and closes the Raft database.
func (r *Replicas) Close() error {
	r.mu.Lock()
	r.closed = true
	groups := r.groups
	r.groups = map[string]*group{}
	r.mu.Unlock()
	r.cancel()
	for _, g := range groups {
		g.stop()
	}
	r.wg.Wait()
	return r.rdb.Close()
}

// send queues a message to a node; it is dropped when the node's queue is
// full (Raft sends again).
func (r *Replicas) send(node string, m *pb.RaftMessage) {
	r.mu.Lock()
	q, ok := r.peers[node]
	if !ok && !r.closed {
		q = make(chan *pb.RaftMessage, 1024)
		r.peers[node] = q
		r.wg.Add(1)
		go r.sendLoop(node, q)
	}
	r.mu.Unlock()
	if q == nil {
		return
	}
	select {
	case q <- m:
	default:
	}
}

// maxStepBytes bounds one Step call's messages (a message is never split).
const maxStepBytes = 16 << 20

// sendLoop sends a node's queued messages, as many as are waiting in one
// call; a failed call drops them.
func (r *Replicas) sendLoop(node string, q chan *pb.RaftMessage) {
	defer r.wg.Done()
	for {
		var first *pb.RaftMessage
		select {
		case first = <-q:
		case <-r.ctx.Done():
			return
		}
		req := &pb.StepRequest{Messages: []*pb.RaftMessage{first}}
		size := len(first.GetMessage())
	more:
		for size < maxStepBytes {
			select {
			case m := <-q:
				req.Messages = append(req.Messages, m)
				size += len(m.GetMessage())
			default:
				break more
			}
		}
		n, ok := r.node.View().Node(node)
		if !ok {
			continue
		}
		cc, err := r.node.cc(n.Addr)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		_, err = pb.NewReplicationServiceClient(cc).Step(ctx, req)
		cancel()
		if err != nil && r.ctx.Err() == nil {
			r.log.Debug("cluster: sending Raft messages", "node", node, "err", err)
		}
	}
}

// transport is the ReplicationService: it hands messages to the groups.
type transport struct {
	pb.UnimplementedReplicationServiceServer
	r *Replicas
}

func (t transport) Step(ctx context.Context, req *pb.StepRequest) (*pb.StepResponse, error) {
	for _, rm := range req.GetMessages() {
		name, _, _ := cutLast(rm.GetGroup(), "@")
		g := t.r.group(name)
		if g == nil || g.key != rm.GetGroup() {
			continue
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(rm.GetMessage(), m); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "group %s: Raft message: %v", rm.GetGroup(), err)
		}
		if m.GetType() == raftpb.MsgSnap {
			g.receiveSnapshot(m) // its checkpoint first
			continue
		}
		select {
		case g.recvC <- m:
		default: // full: dropped, Raft sends again
		}
	}
	return &pb.StepResponse{}, nil
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// publishLeader records this node as shard k's leader in the catalog, with
// its term and the epoch raised, unless a later term is recorded; it
// retries (compare-and-swap on the record's revision) while the group
// still leads in that term. It first waits until the group has applied
// its log up to the entry it appended on becoming the leader (from, the
// index of its first entry of the term), which follows every entry any
// earlier leader committed: reads routed to the leader the catalog names
// see every acknowledged write.
func (r *Replicas) publishLeader(g *group, term, from uint64) {
	defer r.wg.Done()
	for r.ctx.Err() == nil && g.leads(term) {
		g.smu.Lock()
		done := g.status.Applied >= from
		g.smu.Unlock()
		if done {
			break
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	if s, ok := r.updateShard(g, term, func(s *Shard) bool {
		if s.Term > term || (s.Term == term && s.Leader == r.node.ID()) {
			return false
		}
		s.Leader, s.Term = r.node.ID(), term
		return true
	}); ok {
		r.log.Info("cluster: shard leader", "collection", g.coll, "shard", g.shard, "term", term, "epoch", s.Epoch)
	}
}

// updateShard records a change of g's shard in the shard map in etcd:
// edit changes the shard (and returns false when there is nothing to
// record), the epoch is raised, and the map is written with a
// compare-and-swap on its revision, retried with a growing pause while
// the group still leads in term. It returns the shard as written, and
// false when nothing was (the collection dropped or replaced, edit
// declined, the node stopping or no longer leading).
func (r *Replicas) updateShard(g *group, term uint64, edit func(s *Shard) bool) (Shard, bool) {
	key := r.node.collKey(g.coll)
	for attempt := 0; r.ctx.Err() == nil && g.leads(term); attempt++ {
		if attempt > 0 {
			select {
			case <-r.ctx.Done():
				return Shard{}, false
			case <-time.After(min(time.Duration(attempt)*50*time.Millisecond, time.Second)):
			}
		}
		s, ok, retry := r.casShard(g, key, edit)
		if ok || !retry {
			return s, ok
		}
	}
	return Shard{}, false
}

// casShard is one attempt of updateShard: retry says a failed attempt
// may succeed later (etcd unreachable, or the map changed meanwhile).
func (r *Replicas) casShard(g *group, key string, edit func(s *Shard) bool) (_ Shard, ok, retry bool) {
	ctx, cancel := context.WithTimeout(r.ctx, r.node.opts.DialTimeout)
	defer cancel()
	resp, err := r.node.etcd.Get(ctx, key)
	if err != nil {
		return Shard{}, false, true
	}
	if len(resp.Kvs) != 1 {
		return Shard{}, false, false // the collection was dropped
	}
	m, err := decodeShardMap(resp.Kvs[0].Value)
	if err != nil || m.UID != g.uid || g.shard >= len(m.Shards) {
		return Shard{}, false, false
	}
	s := &m.Shards[g.shard]
	if !edit(s) {
		return Shard{}, false, false
	}
	s.Epoch++
	val, err := json.Marshal(m)
	if err != nil {
		return Shard{}, false, false
	}
	tr, err := r.node.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil || !tr.Succeeded {
		return Shard{}, false, true
	}
	return *s, true, false
}

// errStopped is the error of a call to a replica whose group stopped.
func (g *group) errStopped() error {
	return status.Errorf(codes.Unavailable, "shard %d of collection %q: the replica on node %q stopped", g.shard, g.coll, g.r.node.ID())
}

// errNotLeader refuses a write on a replica that is not its shard's
// leader; the router retries at the leader the catalog names.
func (g *group) errNotLeader() error {
	return status.Errorf(codes.Unavailable, "shard %d of collection %q: node %q is not its Raft leader; retry at the leader", g.shard, g.coll, g.r.node.ID())
}

// quietPebble drops Pebble's informational logs.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// raftLogger passes Raft's warnings and errors to the node's logger.
type raftLogger struct{ log *slog.Logger }

func (l raftLogger) Debug(...any)                {}
func (l raftLogger) Debugf(string, ...any)       {}
func (l raftLogger) Info(...any)                 {}
func (l raftLogger) Infof(string, ...any)        {}
func (l raftLogger) Warning(v ...any)            { l.log.Warn("raft: " + fmt.Sprint(v...)) }
func (l raftLogger) Warningf(f string, v ...any) { l.log.Warn("raft: " + fmt.Sprintf(f, v...)) }
func (l raftLogger) Error(v ...any)              { l.log.Error("raft: " + fmt.Sprint(v...)) }
func (l raftLogger) Errorf(f string, v ...any)   { l.log.Error("raft: " + fmt.Sprintf(f, v...)) }
func (l raftLogger) Fatal(v ...any)              { panic("raft: " + fmt.Sprint(v...)) }
func (l raftLogger) Fatalf(f string, v ...any)   { panic("raft: " + fmt.Sprintf(f, v...)) }
func (l raftLogger) Panic(v ...any)              { panic("raft: " + fmt.Sprint(v...)) }
func (l raftLogger) Panicf(f string, v ...any)   { panic("raft: " + fmt.Sprintf(f, v...)) }

var _ raft.Logger = raftLogger{}

var errStopped = errors.New("cluster: replica stopped")

// randUint64 seeds a group's proposal numbers, so that a restarted node's
// numbers do not meet those of its earlier entries.
func randUint64() uint64 { return rand.Uint64() }
