package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

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

// CreateCollection creates a sharded collection of shards shards (0: one
// per live node): shard k is a local collection ShardName(name, k) created
// with req's configuration on its owner, the live nodes taken in turn
// (sorted by ID, starting at the name's hash), then the catalog record is
// put, unless the name is taken. When any step fails, the shards created
// are dropped.
func (c *Client) CreateCollection(ctx context.Context, req *pb.CreateCollectionRequest, shards int) (*pb.CollectionInfo, error) {
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
	if _, ok := c.view.Collection(name); ok {
		return nil, status.Errorf(codes.AlreadyExists, "collection %q: already exists in the cluster", name)
	}
	cfg, err := protojson.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	m := ShardMap{Name: name, Hash: hashFNV1a64, Config: cfg, Shards: make([]Shard, shards)}
	start := ShardOf(name, len(nodes))
	for k := range m.Shards {
		owner := nodes[(start+k)%len(nodes)].ID
		m.Shards[k] = Shard{Index: k, Replicas: []string{owner}, Leader: owner, Epoch: 1}
	}
	var (
		mu      sync.Mutex
		created []int
		info    *pb.CollectionInfo
	)
	err = c.each(ctx, m, allShards(shards), func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		sub := proto.CloneOf(req)
		sub.Name = ShardName(name, k)
		resp, err := cl.CreateCollection(ctx, sub)
		if err != nil {
			return err
		}
		mu.Lock()
		created = append(created, k)
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
// (so no node routes to it any more), then each shard's local collection.
func (c *Client) DropCollection(ctx context.Context, name string) error {
	m, ok := c.view.Collection(name)
	if !ok {
		return status.Errorf(codes.NotFound, "collection %q: not in the cluster's catalog", name)
	}
	if _, err := c.etcd.Delete(ctx, c.collKey(name)); err != nil {
		return status.Errorf(codes.Unavailable, "collection %q: deleting from the catalog: %v", name, err)
	}
	c.view.update(func() { delete(c.view.colls, name) })
	return c.dropShards(ctx, m, allShards(len(m.Shards)))
}

func (c *Client) dropShards(ctx context.Context, m ShardMap, shards []int) error {
	return c.each(ctx, m, shards, func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		_, err := cl.DropCollection(ctx, &pb.DropCollectionRequest{Name: ShardName(m.Name, k)})
		if status.Code(err) == codes.NotFound {
			return nil
		}
		return err
	})
}

func allShards(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// shardClient returns the client of shard k's leader.
func (c *Client) shardClient(m ShardMap, k int) (pb.WPCDBServiceClient, error) {
	s := m.Shards[k]
	n, ok := c.view.Node(s.Leader)
	if !ok {
		return nil, status.Errorf(codes.Unavailable, "node %q is not live", s.Leader)
	}
	return c.conn(n.Addr)
}

// shardError is one shard's failure.
type shardError struct {
	shard int
	node  string
	err   error
}

// each runs f for each of shards at once, on its leader, each within
// Options.ShardTimeout, and waits for all. Errors: see joinErrors.
func (c *Client) each(ctx context.Context, m ShardMap, shards []int, f func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []shardError
	)
	for _, k := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := ctx, context.CancelFunc(func() {})
			if c.opts.ShardTimeout > 0 {
				sctx, cancel = context.WithTimeout(ctx, c.opts.ShardTimeout)
			}
			defer cancel()
			cl, err := c.shardClient(m, k)
			if err == nil {
				err = f(sctx, cl, k)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, shardError{k, m.Shards[k].Leader, err})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return joinErrors(ctx, m, errs)
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
