package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wpcdb/wpcdb"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// Move moves shard k's replica on node from to node to (a live node that
// holds no replica of it), through Raft conf changes, while the shard
// keeps taking writes: the shard's local collection is created on to,
// the move recorded in the shard map (Shard.Move, epoch raised), and the
// shard's leader adds to as a learner, which catches up from a snapshot
// or the log, promotes it, removes from (handing the leadership to to
// first when from leads), and records the shard map with to in from's
// place (epoch raised); from then drops its copy. Move waits for that
// until ctx ends (the move goes on without the caller) and returns the
// shard as recorded. One move per shard at a time; a call repeating the
// move in progress waits for it. A shard of one replica is not a Raft
// group and cannot move (FailedPrecondition).
func (c *Client) Move(ctx context.Context, collection string, k int, from, to string) (Shard, error) {
	m, ok := c.view.Collection(collection)
	if !ok {
		return Shard{}, status.Errorf(codes.NotFound, "collection %q: not in the cluster's catalog", collection)
	}
	if k < 0 || k >= len(m.Shards) {
		return Shard{}, status.Errorf(codes.InvalidArgument, "collection %q: shard %d: it has shards 0 to %d", collection, k, len(m.Shards)-1)
	}
	s := m.Shards[k]
	if mv := s.Move; mv != nil {
		if mv.From != from || mv.To != to {
			return Shard{}, status.Errorf(codes.FailedPrecondition, "shard %d of collection %q: a move from %q to %q is in progress", k, collection, mv.From, mv.To)
		}
		return c.waitMove(ctx, collection, k, to)
	}
	switch {
	case len(s.Replicas) < 2:
		return Shard{}, status.Errorf(codes.FailedPrecondition, "shard %d of collection %q has one replica: only a replicated shard (a Raft group) moves", k, collection)
	case !slices.Contains(s.Replicas, from):
		return Shard{}, status.Errorf(codes.InvalidArgument, "shard %d of collection %q: node %q is not one of its replicas %v", k, collection, from, s.Replicas)
	case slices.Contains(s.Replicas, to):
		return Shard{}, status.Errorf(codes.InvalidArgument, "shard %d of collection %q: node %q is already one of its replicas", k, collection, to)
	}
	cl, err := c.nodeClient(to)
	if err != nil {
		return Shard{}, err
	}
	cfg := &pb.CollectionConfig{}
	if err := protojson.Unmarshal(m.Config, cfg); err != nil {
		return Shard{}, status.Errorf(codes.Internal, "collection %q: its configuration in the catalog: %v", collection, err)
	}
	if _, err := cl.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: ShardName(collection, k), Config: cfg}); status.Code(err) == codes.AlreadyExists {
		return Shard{}, status.Errorf(codes.FailedPrecondition, "shard %d of collection %q: node %q already holds a collection %q", k, collection, to, ShardName(collection, k))
	} else if err != nil {
		return Shard{}, err
	}
	key := c.collKey(collection)
	for {
		resp, err := c.etcd.Get(ctx, key)
		if err != nil {
			return Shard{}, status.Errorf(codes.Unavailable, "collection %q: reading the catalog: %v", collection, err)
		}
		if len(resp.Kvs) != 1 {
			return Shard{}, status.Errorf(codes.NotFound, "collection %q: not in the cluster's catalog", collection)
		}
		cur, err := decodeShardMap(resp.Kvs[0].Value)
		if err != nil {
			return Shard{}, err
		}
		if cur.UID != m.UID || !slices.Equal(cur.Shards[k].Replicas, s.Replicas) || cur.Shards[k].Move != nil {
			return Shard{}, status.Errorf(codes.Aborted, "shard %d of collection %q changed meanwhile; try again", k, collection)
		}
		sh := &cur.Shards[k]
		peer := sh.nextPeer()
		sh.Peers, sh.NextPeer = slices.Clone(sh.peerIDs()), peer+1
		sh.Move = &Move{From: from, To: to, Peer: peer}
		sh.Epoch++
		val, err := json.Marshal(cur)
		if err != nil {
			return Shard{}, err
		}
		tr, err := c.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
			Then(clientv3.OpPut(key, string(val))).Commit()
		if err != nil {
			return Shard{}, status.Errorf(codes.Unavailable, "collection %q: writing the catalog: %v", collection, err)
		}
		if tr.Succeeded {
			c.log.Info("cluster: moving a shard replica", "collection", collection, "shard", k, "from", from, "to", to, "peer", peer)
			break
		}
		// A leader recorded itself meanwhile: read again.
	}
	return c.waitMove(ctx, collection, k, to)
}

// waitMove waits until the view shows shard k's move to node to done.
func (c *Client) waitMove(ctx context.Context, collection string, k int, to string) (Shard, error) {
	for {
		ch := c.view.Changed()
		m, ok := c.view.Collection(collection)
		if !ok {
			return Shard{}, status.Errorf(codes.NotFound, "collection %q: dropped during the move", collection)
		}
		if s := m.Shards[k]; s.Move == nil && slices.Contains(s.Replicas, to) {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Shard{}, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// publishMove records a move done in Raft (the target a voter, the source
// removed) in the shard map: the target in the source's place, the move
// cleared, this node the leader in term, the epoch raised; retried while
// the group leads in that term.
func (r *Replicas) publishMove(g *group, mv Move, term uint64) {
	if s, ok := r.updateShard(g, term, func(s *Shard) bool {
		if s.Move == nil || *s.Move != mv {
			return false
		}
		i := slices.Index(s.Replicas, mv.From)
		if i < 0 {
			return false
		}
		peers := slices.Clone(s.peerIDs())
		s.Replicas = slices.Clone(s.Replicas)
		s.Replicas[i], peers[i] = mv.To, mv.Peer
		s.Peers, s.Move = peers, nil
		if s.Term <= term {
			s.Leader, s.Term = r.node.ID(), term
		}
		return true
	}); ok {
		r.log.Info("cluster: shard replica moved", "collection", g.coll, "shard", g.shard, "from", mv.From, "to", mv.To, "epoch", s.Epoch)
	}
}

// Replaced is one replica Replace moved.
type Replaced struct {
	Collection string
	Shard      int
	To         string
	Err        error // the move's failure (the other shards are still moved)
}

// Replace moves every replica that node dead holds (of shards of more
// than one replica) to live nodes, one shard after the other, each to
// the live node that is not yet a replica of that shard and holds the
// fewest replicas (then the smallest ID). dead must not be live: a live
// node's replicas move with Move. Replacing is never automatic: a node
// can be down for a long while (a host rebooting) and come back with its
// copies, cheaper than copying them; a shard of three replicas keeps
// taking writes with one down. A shard of one replica on a dead node
// cannot be replaced (its only copy is there) and is reported as failed.
func (c *Client) Replace(ctx context.Context, dead string) ([]Replaced, error) {
	if _, ok := c.view.Node(dead); ok {
		return nil, status.Errorf(codes.FailedPrecondition, "node %q is live: move its replicas with `cluster move`, or stop it first", dead)
	}
	var out []Replaced
	for _, m := range c.view.Collections() {
		for k, s := range m.Shards {
			if !slices.Contains(s.Replicas, dead) {
				continue
			}
			r := Replaced{Collection: m.Name, Shard: k}
			if len(s.Replicas) < 2 {
				r.Err = status.Errorf(codes.FailedPrecondition, "shard %d of collection %q has its one replica on %q: it cannot be replaced", k, m.Name, dead)
				out = append(out, r)
				continue
			}
			r.To = c.leastLoaded(s.Replicas)
			if r.To == "" {
				r.Err = status.Errorf(codes.FailedPrecondition, "shard %d of collection %q: no live node that is not already one of its replicas %v", k, m.Name, s.Replicas)
				out = append(out, r)
				continue
			}
			_, r.Err = c.Move(ctx, m.Name, k, dead, r.To)
			out = append(out, r)
			if ctx.Err() != nil {
				return out, status.FromContextError(ctx.Err()).Err()
			}
		}
	}
	return out, nil
}

// leastLoaded returns the live node outside exclude holding the fewest
// replicas in the catalog, "" when there is none.
func (c *Client) leastLoaded(exclude []string) string {
	load := map[string]int{}
	for _, m := range c.view.Collections() {
		for _, s := range m.Shards {
			for _, id := range s.Replicas {
				load[id]++
			}
		}
	}
	best := ""
	for _, n := range c.view.Nodes() { // sorted by ID
		if slices.Contains(exclude, n.ID) {
			continue
		}
		if best == "" || load[n.ID] < load[best] {
			best = n.ID
		}
	}
	return best
}

// ensureCollection creates shard k's local collection on this node, a
// move's target, when it is missing (Move creates it before recording the
// move; this covers a node that dropped it meanwhile as moved away).
func (r *Replicas) ensureCollection(m ShardMap, k int) error {
	if r.db == nil {
		return nil
	}
	name := ShardName(m.Name, k)
	if _, err := r.db.Collection(name); !errors.Is(err, wpcdb.ErrCollectionNotFound) {
		return err
	}
	cfg := &pb.CollectionConfig{}
	if err := protojson.Unmarshal(m.Config, cfg); err != nil {
		return fmt.Errorf("collection %q: its configuration in the catalog: %w", m.Name, err)
	}
	_, err := r.local.CreateCollection(r.ctx, &pb.CreateCollectionRequest{Name: name, Config: cfg})
	if errors.Is(err, wpcdb.ErrCollectionExists) || status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}
