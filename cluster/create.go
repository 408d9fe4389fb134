package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb/internal/rpcerr"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/storage"
)

func (c *Client) collKey(name string) string { return c.prefix + collectionsDir + name }

// MaxReplicas bounds a shard's replicas (a Raft group's voters).
const MaxReplicas = 7

// CreateCollection creates a sharded collection of shards shards (0: one
// per live node) of replicas replicas each (0: 1): shard k is a local
// collection ShardName(name, k) created with req's configuration on each
// of its replicas, the live nodes taken in turn (sorted by ID, starting at
// the name's hash, shard k's replicas the replicas consecutive nodes from
// its first), then the catalog record is put, unless the name is taken.
// When any step fails, the shards created are dropped. A shard of more
// than one replica is a Raft group: its replicas elect its leader, which
// records itself in the catalog (until then the first replica is named).
func (c *Client) CreateCollection(ctx context.Context, req *pb.CreateCollectionRequest, shards, replicas int) (*pb.CollectionInfo, error) {
	name := req.GetName()
	if err := storage.ValidateName(name); err != nil {
		return nil, rpcerr.Status(err)
	}
	if isShardName(name) {
		return nil, status.Errorf(codes.InvalidArgument, "collection %q: a sharded collection's name may not end in .s<digits> (its shards' names do)", name)
	}
	nodes := c.view.Nodes()
	if len(nodes) == 0 {
		return nil, status.Errorf(codes.Unavailable, "collection %q: no live node in the cluster", name)
	}
	if shards == 0 {
		shards = len(nodes)
	}
	if err := checkShards(name, shards); err != nil {
		return nil, rpcerr.Status(err)
	}
	if replicas == 0 {
		replicas = 1
	}
	if replicas < 1 || replicas > MaxReplicas {
		return nil, status.Errorf(codes.InvalidArgument, "collection %q: replicas must be between 1 and %d, got %d", name, MaxReplicas, replicas)
	}
	if replicas > len(nodes) {
		return nil, status.Errorf(codes.FailedPrecondition, "collection %q: %d replicas need as many live nodes; the cluster has %d", name, replicas, len(nodes))
	}
	if _, ok := c.view.Collection(name); ok {
		return nil, status.Errorf(codes.AlreadyExists, "collection %q: already exists in the cluster", name)
	}
	cfg, err := protojson.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	m := ShardMap{Name: name, UID: fmt.Sprintf("%016x", randUint64()), Hash: hashFNV1a64, Config: cfg, Shards: make([]Shard, shards)}
	start := ShardOf(name, len(nodes))
	for k := range m.Shards {
		reps := make([]string, replicas)
		for j := range reps {
			reps[j] = nodes[(start+k+j)%len(nodes)].ID
		}
		m.Shards[k] = Shard{Index: k, Replicas: reps, Leader: reps[0], Epoch: 1}
	}
	var (
		mu      sync.Mutex
		created []replicaRef
		info    *pb.CollectionInfo
	)
	err = c.eachReplica(ctx, m, allShards(shards), func(ctx context.Context, cl pb.WPCDBServiceClient, k int, node string) error {
		sub := proto.CloneOf(req)
		sub.Name = ShardName(name, k)
		resp, err := cl.CreateCollection(ctx, sub)
		if err != nil {
			return err
		}
		mu.Lock()
		created = append(created, replicaRef{k, node})
		if k == 0 {
			info = resp.GetCollection()
		}
		mu.Unlock()
		return nil
	})
	if err == nil {
		err = c.putCatalog(ctx, m)
	}
	if err != nil {
		c.dropShards(context.WithoutCancel(ctx), m, created)
		return nil, err
	}
	info = proto.CloneOf(info)
	info.Name = name
	return info, nil
}

// replicaRef is one replica of one shard.
type replicaRef struct {
	shard int
	node  string
}

// putCatalog puts a new collection's record unless the name is taken, and
// files it in the view at once (the watch brings it to the other nodes).
func (c *Client) putCatalog(ctx context.Context, m ShardMap) error {
	val, err := json.Marshal(m)
	if err != nil {
		return err
	}
	key := c.collKey(m.Name)
	resp, err := c.etcd.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).Commit()
	if err != nil {
		return status.Errorf(codes.Unavailable, "collection %q: writing the catalog: %v", m.Name, err)
	}
	if !resp.Succeeded {
		return status.Errorf(codes.AlreadyExists, "collection %q: already exists in the cluster", m.Name)
	}
	c.view.update(func() { c.view.colls[m.Name] = m })
	return nil
}

// DropCollection removes a sharded collection: its catalog record first
// (so no node routes to it any more, and its replicas stop their Raft
// groups and delete their logs), then each replica's local collection.
func (c *Client) DropCollection(ctx context.Context, name string) error {
	m, ok := c.view.Collection(name)
	if !ok {
		return status.Errorf(codes.NotFound, "collection %q: not in the cluster's catalog", name)
	}
	if _, err := c.etcd.Delete(ctx, c.collKey(name)); err != nil {
		return status.Errorf(codes.Unavailable, "collection %q: deleting from the catalog: %v", name, err)
	}
	c.view.update(func() { delete(c.view.colls, name) })
	var all []replicaRef
	for k, s := range m.Shards {
		for _, n := range s.Replicas {
			all = append(all, replicaRef{k, n})
		}
		if s.Move != nil { // the target of a move in progress has a copy too
			all = append(all, replicaRef{k, s.Move.To})
		}
	}
	return c.dropShards(ctx, m, all)
}

func (c *Client) dropShards(ctx context.Context, m ShardMap, reps []replicaRef) error {
	return c.parallel(ctx, m, len(reps), func(ctx context.Context, i int) (int, string, error) {
		k, node := reps[i].shard, reps[i].node
		cl, err := c.nodeClient(node)
		if err == nil {
			_, err = cl.DropCollection(ctx, &pb.DropCollectionRequest{Name: ShardName(m.Name, k)})
		}
		if status.Code(err) == codes.NotFound {
			err = nil
		}
		return k, node, err
	})
}

func allShards(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// nodeClient returns the client of a live node.
func (c *Client) nodeClient(id string) (pb.WPCDBServiceClient, error) {
	n, ok := c.view.Node(id)
	if !ok {
		return nil, status.Errorf(codes.Unavailable, "node %q is not live", id)
	}
	return c.conn(n.Addr)
}

// shardError is one shard's failure.
type shardError struct {
	shard int
	node  string
	err   error
}

// parallel runs f(i) for i in [0, n) at once, each within
// Options.ShardTimeout, and waits for all; f names the shard and node of
// a failure. Errors: see joinErrors.
func (c *Client) parallel(ctx context.Context, m ShardMap, n int, f func(ctx context.Context, i int) (shard int, node string, err error)) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []shardError
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := ctx, context.CancelFunc(func() {})
			if c.opts.ShardTimeout > 0 {
				sctx, cancel = context.WithTimeout(ctx, c.opts.ShardTimeout)
			}
			defer cancel()
			k, node, err := f(sctx, i)
			if err != nil {
				mu.Lock()
				errs = append(errs, shardError{k, node, err})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return joinErrors(ctx, m, errs)
}

// each reads from each of shards at once: f runs on the shard's leader
// when it is live, and when that fails as Unavailable (the node down, or
// not live) on each other live replica in turn until one answers. A
// replica other than the leader may not have applied the latest writes
// yet (see the package doc).
func (c *Client) each(ctx context.Context, m ShardMap, shards []int, f func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error) error {
	return c.parallel(ctx, m, len(shards), func(ctx context.Context, i int) (int, string, error) {
		k := shards[i]
		s := m.Shards[k]
		order := append([]string{s.Leader}, s.Replicas...)
		var (
			err  error
			node = s.Leader
		)
		for j, id := range order {
			if j > 0 && id == s.Leader {
				continue
			}
			cl, cerr := c.nodeClient(id)
			if cerr != nil {
				if err == nil {
					err = cerr
				}
				continue
			}
			node = id
			if err = f(ctx, cl, k); status.Code(err) != codes.Unavailable || ctx.Err() != nil {
				return k, node, err
			}
		}
		return k, node, err
	})
}

// eachWrite runs f on each of shards at once, on the shard's leader: a
// write, or a strong read. For
// a replicated shard a failure as Unavailable (the leader down, or a
// replica that no longer leads) is retried until the shard's part of the
// request ends: at once when the catalog changes (a new leader records
// itself), else after a backoff growing from 50 ms to 1 s. Every write
// can be applied again harmlessly, so a retry of a write whose first try
// was applied but not acknowledged changes nothing more (a retried
// Delete counts only what it deleted itself).
func (c *Client) eachWrite(ctx context.Context, m ShardMap, shards []int, f func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error) error {
	return c.parallel(ctx, m, len(shards), func(ctx context.Context, i int) (int, string, error) {
		k := shards[i]
		for attempt := 0; ; attempt++ {
			changed := c.view.Changed()
			cur, ok := c.view.Collection(m.Name)
			if !ok || cur.UID != m.UID || len(cur.Shards) != len(m.Shards) {
				return k, m.Shards[k].Leader, status.Errorf(codes.NotFound, "collection %q: no longer in the cluster's catalog", m.Name)
			}
			s := cur.Shards[k]
			cl, err := c.nodeClient(s.Leader)
			if err == nil {
				err = f(ctx, cl, k)
			}
			if status.Code(err) != codes.Unavailable || len(s.Replicas) < 2 || ctx.Err() != nil {
				return k, s.Leader, err
			}
			c.log.Debug("cluster: retrying a write", "collection", m.Name, "shard", k, "leader", s.Leader, "err", err)
			select {
			case <-changed:
			case <-time.After(min(50*time.Millisecond<<min(attempt, 5), time.Second)):
			case <-ctx.Done():
				return k, s.Leader, err
			}
		}
	})
}

// eachReplica runs f on every replica of each of shards at once.
func (c *Client) eachReplica(ctx context.Context, m ShardMap, shards []int, f func(ctx context.Context, cl pb.WPCDBServiceClient, k int, node string) error) error {
	var all []replicaRef
	for _, k := range shards {
		for _, n := range m.Shards[k].Replicas {
			all = append(all, replicaRef{k, n})
		}
	}
	return c.parallel(ctx, m, len(all), func(ctx context.Context, i int) (int, string, error) {
		k, node := all[i].shard, all[i].node
		cl, err := c.nodeClient(node)
		if err == nil {
			err = f(ctx, cl, k, node)
		}
		return k, node, err
	})
}

// joinErrors makes one status of the shards' failures. The caller's own
// cancellation or deadline wins; a request error (bad argument, not
// found, …) is the same on every shard and keeps its code and message;
// any other failure refuses the partial result: Unavailable, naming every
// failed shard and its node.
func joinErrors(ctx context.Context, m ShardMap, errs []shardError) error {
	if len(errs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	slices.SortFunc(errs, func(a, b shardError) int { return a.shard - b.shard })
	first := errs[0]
	switch status.Code(first.err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.ResourceExhausted, codes.Unauthenticated, codes.PermissionDenied, codes.Canceled, codes.OutOfRange:
		return first.err
	}
	msg := fmt.Sprintf("collection %q: partial result refused: %d of %d shards failed:", m.Name, len(errs), len(m.Shards))
	for _, e := range errs {
		msg += fmt.Sprintf(" shard %d (node %q): %s;", e.shard, e.node, status.Convert(e.err).Message())
	}
	return status.Error(codes.Unavailable, msg[:len(msg)-1])
}
