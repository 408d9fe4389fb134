package cluster

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// The key layout in etcd, under Options.Prefix (default "/wpcdb/"):
//
//	nodes/<node-id>        NodeInfo as JSON, put under the node's lease
//	collections/<name>     ShardMap as JSON
//	applied/<node-id>      the node's replicas' applied indexes, JSON {shard name: index}
const (
	nodesDir       = "nodes/"
	collectionsDir = "collections/"
	appliedDir     = "applied/"
	// DefaultPrefix is the etcd key prefix of a cluster's records.
	DefaultPrefix = "/wpcdb/"
)

// NodeInfo is a live node's record: it exists while the node's lease does.
type NodeInfo struct {
	ID   string `json:"id"`
	Addr string `json:"addr"` // the advertised HOST:PORT of its gRPC service
}

// Shard is one shard of a collection. With one replica, that replica is
// its leader. With more, the shard is a Raft group over its replicas (the
// i-th replica is Raft peer Peers[i], or i+1 when Peers is absent) and
// Leader is the node whose Raft leads it, written by that node when it
// becomes the leader, with Term its Raft term (a leader writes only over
// an older term) and Epoch raised by one: Epoch is 1 at creation and
// grows with every change of the shard's leader or replicas.
type Shard struct {
	Index    int      `json:"index"`
	Replicas []string `json:"replicas"` // node IDs
	Leader   string   `json:"leader"`   // a node ID, one of Replicas (or Move.To during a move)
	Epoch    uint64   `json:"epoch"`
	Term     uint64   `json:"term,omitempty"` // the leader's Raft term; 0 before the first election
	// Peers are the Raft IDs of Replicas (absent: 1, 2, …); NextPeer the
	// ID the next replica added gets (0: len(Replicas)+1). IDs are never
	// reused, so a removed replica's late messages reach no one.
	Peers    []uint64 `json:"peers,omitempty"`
	NextPeer uint64   `json:"next_peer,omitempty"`
	// Move is a replica move in progress (Client.Move): the shard's leader
	// adds To as a Raft learner (peer Move.Peer), promotes it once it
	// caught up, removes From (moving the leadership first when it leads)
	// and then writes the shard without Move, To in From's place.
	Move *Move `json:"move,omitempty"`
}

// Move is a replica move in progress.
type Move struct {
	From string `json:"from"`
	To   string `json:"to"`
	Peer uint64 `json:"peer"` // To's Raft ID
}

// peerIDs returns the Raft IDs of s.Replicas.
func (s Shard) peerIDs() []uint64 {
	if len(s.Peers) == len(s.Replicas) {
		return s.Peers
	}
	ids := make([]uint64, len(s.Replicas))
	for i := range ids {
		ids[i] = uint64(i) + 1
	}
	return ids
}

// nextPeer returns the Raft ID the next replica added gets.
func (s Shard) nextPeer() uint64 {
	if s.NextPeer != 0 {
		return s.NextPeer
	}
	return uint64(len(s.Replicas)) + 1
}

// members returns the shard's Raft peers by ID: its replicas, and a move's
// target.
func (s Shard) members() map[uint64]string {
	ids := s.peerIDs()
	out := make(map[uint64]string, len(ids)+1)
	for i, id := range ids {
		out[id] = s.Replicas[i]
	}
	if s.Move != nil {
		out[s.Move.Peer] = s.Move.To
	}
	return out
}

// ShardMap is a sharded collection's record in the catalog.
type ShardMap struct {
	Name string `json:"name"`
	// UID tells this collection from an earlier one of the same name: the
	// shards' Raft groups are named by it.
	UID string `json:"uid,omitempty"`
	// Hash names the item → shard function; only "fnv1a64" (ShardOf).
	Hash   string  `json:"hash"`
	Shards []Shard `json:"shards"`
	// Config is the collection's configuration as the protojson of
	// wpcdb.v1.CollectionConfig, as each shard was created with it.
	Config json.RawMessage `json:"config"`
}

const hashFNV1a64 = "fnv1a64"

func decodeShardMap(b []byte) (ShardMap, error) {
	var m ShardMap
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("cluster: catalog record: %w", err)
	}
	if m.Hash != hashFNV1a64 || len(m.Shards) == 0 || len(m.Shards) > MaxShards {
		return m, fmt.Errorf("cluster: catalog record of %q: hash %q with %d shards is not one this node knows", m.Name, m.Hash, len(m.Shards))
	}
	return m, nil
}

// View is a node's copy of the cluster's records, kept up to date by a
// watch. Safe for concurrent use.
type View struct {
	mu      sync.RWMutex
	nodes   map[string]NodeInfo
	colls   map[string]ShardMap
	applied map[string]map[string]uint64 // by node, by shard name
	changed chan struct{}                // closed and replaced on every change
}

func newView() *View {
	return &View{nodes: map[string]NodeInfo{}, colls: map[string]ShardMap{}, applied: map[string]map[string]uint64{}, changed: make(chan struct{})}
}

// Nodes returns the live nodes, sorted by ID.
func (v *View) Nodes() []NodeInfo {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return sortedValues(v.nodes, func(n NodeInfo) string { return n.ID })
}

// Node returns a live node's record.
func (v *View) Node(id string) (NodeInfo, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n, ok := v.nodes[id]
	return n, ok
}

// Collection returns a sharded collection's map.
func (v *View) Collection(name string) (ShardMap, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	m, ok := v.colls[name]
	return m, ok
}

// Collections returns every sharded collection's map, sorted by name.
func (v *View) Collections() []ShardMap {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return sortedValues(v.colls, func(m ShardMap) string { return m.Name })
}

// sortedValues returns m's values sorted by key.
func sortedValues[V any](m map[string]V, key func(V) string) []V {
	out := make([]V, 0, len(m)) // never nil: callers marshal it
	for _, x := range m {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b V) int { return cmp.Compare(key(a), key(b)) })
	return out
}

// Applied returns the applied index a node last published for its
// replica of the shard whose local collection is shard (Replicas
// publishes them about every second).
func (v *View) Applied(node, shard string) (uint64, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	i, ok := v.applied[node][shard]
	return i, ok
}

// Changed returns a channel closed at the view's next change.
func (v *View) Changed() <-chan struct{} {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.changed
}

func (v *View) update(f func()) {
	v.mu.Lock()
	f()
	close(v.changed)
	v.changed = make(chan struct{})
	v.mu.Unlock()
}
