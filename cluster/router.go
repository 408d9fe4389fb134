package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/order"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/internal/rpcerr"
	"github.com/wpcdb/wpcdb/query"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// Router is the service a cluster node serves: calls naming a sharded
// collection are routed to its shards' nodes over their gRPC services;
// every other call (a shard's local collection among them) goes to the
// node's local service, which it embeds.
//
// A write naming a shard whose replica this node runs (reps) is proposed
// to the shard's Raft group instead, after the same validation one node
// makes (see replicated.go).
type Router struct {
	pb.WPCDBServiceServer // the local service
	c                     *Client
	reps                  *Replicas
}

// NewRouter routes c's sharded collections, writes to the replicated
// shards reps runs (nil: none) through their Raft groups, and passes the
// rest to local.
func NewRouter(c *Client, local pb.WPCDBServiceServer, reps *Replicas) *Router {
	return &Router{WPCDBServiceServer: local, c: c, reps: reps}
}

// collection returns the map of the sharded collection name, or false
// when it is none (then it is one of this node's collections). The view is
// kept by a watch, so a collection created through another node a moment
// ago may not be in it yet: on a miss, a name that is not a shard's is
// looked up in etcd itself (a linearizable read), so that a write or read
// right after the create is routed instead of falling through to this
// node's collections and answering NotFound (TestClusterCLI's ingest
// through n1 after a create through the cluster failed so, 1 run in 4 on
// a loaded machine). Shards' names skip the read: calls to them are every
// fan-out's.
func (r *Router) collection(ctx context.Context, name string) (ShardMap, bool) {
	if m, ok := r.c.view.Collection(name); ok || isShardName(name) {
		return m, ok
	}
	m, ok, err := r.c.freshCollection(ctx, name)
	if err != nil {
		r.c.log.Warn("cluster: reading the catalog record", "collection", name, "err", err)
	}
	return m, ok
}

// DefaultShards is the number of shards CreateCollection gives a
// collection through the service (which has no shards field): 0, one per
// live node. The CLI's --shards calls Client.CreateCollection directly.
const DefaultShards = 0

// CreateCollection creates a sharded collection, one shard per live node,
// of Options.Replicas replicas each;
// a name of a shard's form ("<name>.s<k>", which a sharded collection may
// not have) is a local collection: that is how a router creates a shard on
// its owner.
func (r *Router) CreateCollection(ctx context.Context, req *pb.CreateCollectionRequest) (*pb.CreateCollectionResponse, error) {
	if isShardName(req.GetName()) {
		return r.WPCDBServiceServer.CreateCollection(ctx, req)
	}
	info, err := r.c.CreateCollection(ctx, req, DefaultShards, r.c.opts.Replicas)
	if err != nil {
		return nil, err
	}
	return &pb.CreateCollectionResponse{Collection: info}, nil
}

func (r *Router) DropCollection(ctx context.Context, req *pb.DropCollectionRequest) (*pb.DropCollectionResponse, error) {
	if _, ok := r.collection(ctx, req.GetName()); !ok {
		return r.WPCDBServiceServer.DropCollection(ctx, req)
	}
	if err := r.c.DropCollection(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &pb.DropCollectionResponse{}, nil
}

// describe sums the shards' descriptions: count and disk bytes add up;
// the configuration and index status are shard 0's.
func (r *Router) describe(ctx context.Context, m ShardMap) (*pb.CollectionInfo, error) {
	infos := make([]*pb.CollectionInfo, len(m.Shards))
	err := r.c.each(ctx, m, allShards(len(m.Shards)), func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		resp, err := cl.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: ShardName(m.Name, k)})
		infos[k] = resp.GetCollection()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := proto.CloneOf(infos[0])
	out.Name = m.Name
	for _, in := range infos[1:] {
		out.Count += in.GetCount()
		out.DiskBytes += in.GetDiskBytes()
	}
	return out, nil
}

func (r *Router) DescribeCollection(ctx context.Context, req *pb.DescribeCollectionRequest) (*pb.DescribeCollectionResponse, error) {
	m, ok := r.collection(ctx, req.GetName())
	if !ok {
		return r.WPCDBServiceServer.DescribeCollection(ctx, req)
	}
	info, err := r.describe(ctx, m)
	if err != nil {
		return nil, err
	}
	return &pb.DescribeCollectionResponse{Collection: info}, nil
}

// ListCollections lists the sharded collections (described across their
// shards) and this node's other local collections, by name; the local
// collections that are shards are left out.
func (r *Router) ListCollections(ctx context.Context, req *pb.ListCollectionsRequest) (*pb.ListCollectionsResponse, error) {
	local, err := r.WPCDBServiceServer.ListCollections(ctx, req)
	if err != nil {
		return nil, err
	}
	shardNames := map[string]bool{}
	out := &pb.ListCollectionsResponse{}
	for _, m := range r.c.view.Collections() {
		for k := range m.Shards {
			shardNames[ShardName(m.Name, k)] = true
		}
		info, err := r.describe(ctx, m)
		if err != nil {
			return nil, err
		}
		out.Collections = append(out.Collections, info)
	}
	for _, info := range local.GetCollections() {
		if !shardNames[info.GetName()] {
			out.Collections = append(out.Collections, info)
		}
	}
	slices.SortFunc(out.Collections, func(a, b *pb.CollectionInfo) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// split groups the indexes of ids by shard.
func split(m ShardMap, n int, id func(i int) string) map[int][]int {
	out := map[int][]int{}
	for i := range n {
		k := ShardOf(id(i), len(m.Shards))
		out[k] = append(out[k], i)
	}
	return out
}

func keys(g map[int][]int) []int {
	out := make([]int, 0, len(g))
	for k := range g {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkItems validates a batch as one node would before writing any of
// it (wpcdb.CheckItems), so that an invalid item refuses the whole batch
// and no shard writes its part; its error is one node's.
func checkItems(m ShardMap, items []*pb.Item) error {
	var pcfg pb.CollectionConfig
	if err := protojson.Unmarshal(m.Config, &pcfg); err != nil {
		return status.Errorf(codes.Internal, "collection %q: catalog config: %v", m.Name, err)
	}
	cfg, err := pbconv.ConfigFromPB(&pcfg)
	if err != nil {
		return status.Errorf(codes.Internal, "collection %q: catalog config: %v", m.Name, err)
	}
	its := make([]wpcdb.Item, len(items))
	for i, p := range items {
		if its[i], err = pbconv.ItemFromPB(p); err != nil {
			return rpcerr.Status(wpcdb.NewInvalidItem(i, p.GetId(), err))
		}
	}
	var bad *wpcdb.InvalidItem
	if err := wpcdb.CheckItems(cfg, its); errors.As(err, &bad) {
		return rpcerr.Status(bad)
	}
	return nil
}

// remapInvalid reports a shard's refused item by its index in the
// request (the shard saw its index in its part of the batch): the item is
// refused again, from the shard's InvalidItem detail, as one node refuses
// it.
func remapInvalid(err error, index []int) error {
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		return err
	}
	for _, d := range st.Details() {
		bad, ok := d.(*pb.InvalidItem)
		if !ok || int(bad.GetIndex()) >= len(index) {
			continue
		}
		return rpcerr.Status(wpcdb.NewInvalidItem(index[bad.GetIndex()], bad.GetId(), errors.New(bad.GetReason())))
	}
	return err
}

// upsertParts writes one batch: each shard's items with one call on its
// leader (send), at once; the written counts add up and skipped items are
// reported by their request index. Each shard's part is atomic; a batch
// spanning shards is not (see the package doc).
func (r *Router) upsertParts(ctx context.Context, m ShardMap, items []*pb.Item, skip bool, send func(ctx context.Context, cl pb.WPCDBServiceClient, k int, part []*pb.Item) (uint32, []*pb.InvalidItem, error)) (uint32, []*pb.InvalidItem, error) {
	if !skip {
		if err := checkItems(m, items); err != nil {
			return 0, nil, err
		}
	}
	groups := split(m, len(items), func(i int) string { return items[i].GetId() })
	var (
		mu      sync.Mutex
		written uint32
		skipped []*pb.InvalidItem
	)
	err := r.c.eachWrite(ctx, m, keys(groups), func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		idx := groups[k]
		part := make([]*pb.Item, len(idx))
		for j, i := range idx {
			part[j] = items[i]
		}
		w, sk, err := send(ctx, cl, k, part)
		if err != nil {
			return remapInvalid(err, idx)
		}
		mu.Lock()
		defer mu.Unlock()
		written += w
		for _, s := range sk {
			s = proto.CloneOf(s)
			s.Index = uint32(idx[s.GetIndex()])
			skipped = append(skipped, s)
		}
		return nil
	})
	slices.SortFunc(skipped, func(a, b *pb.InvalidItem) int { return int(a.GetIndex()) - int(b.GetIndex()) })
	return written, skipped, err
}

func (r *Router) UpsertBatch(ctx context.Context, req *pb.UpsertBatchRequest) (*pb.UpsertBatchResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if g := r.reps.group(req.GetCollection()); g != nil {
			return r.replicatedUpsert(ctx, g, req)
		}
		return r.WPCDBServiceServer.UpsertBatch(ctx, req)
	}
	w, sk, err := r.upsertParts(ctx, m, req.GetItems(), req.GetSkipInvalid(), func(ctx context.Context, cl pb.WPCDBServiceClient, k int, part []*pb.Item) (uint32, []*pb.InvalidItem, error) {
		resp, err := cl.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: ShardName(m.Name, k), Items: part, SkipInvalid: req.GetSkipInvalid()})
		return resp.GetWritten(), resp.GetSkipped(), err
	})
	if err != nil {
		return nil, err
	}
	return &pb.UpsertBatchResponse{Written: w, Skipped: sk}, nil
}

// Upsert routes a stream: each received batch is split by shard and each
// part sent on a stream to its shard's leader (opened at its first part);
// the batch is acknowledged once every part is. When the client's stream
// ends well, every shard stream is closed, so each shard ends its load
// (and may calibrate) as a single node does.
func (r *Router) Upsert(stream pb.WPCDBService_UpsertServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	m, ok := r.collection(ctx, first.GetCollection())
	if !ok {
		if g := r.reps.group(first.GetCollection()); g != nil {
			return r.replicatedUpsertStream(g, stream, first)
		}
		return r.WPCDBServiceServer.Upsert(&replayStream{WPCDBService_UpsertServer: stream, first: first})
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	shardStreams := map[int]pb.WPCDBService_UpsertClient{}
	replicated := map[int]bool{}
	req := first
	for batch := uint64(0); ; batch++ {
		if name := req.GetCollection(); batch > 0 && name != "" && name != m.Name {
			return status.Errorf(codes.InvalidArgument, "batch %d: collection %q: an Upsert stream writes to one collection (%q)", batch, name, m.Name)
		}
		w, sk, err := r.upsertParts(ctx, m, req.GetItems(), req.GetSkipInvalid(), func(ctx context.Context, cl pb.WPCDBServiceClient, k int, part []*pb.Item) (uint32, []*pb.InvalidItem, error) {
			if len(m.Shards[k].Replicas) > 1 {
				// A replicated shard's batches go one call each, which
				// the write retry can send again at a new leader; its
				// load ends at the stream's end (endLoads).
				mu.Lock()
				replicated[k] = true
				mu.Unlock()
				resp, err := cl.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: ShardName(m.Name, k), Items: part, SkipInvalid: req.GetSkipInvalid()})
				return resp.GetWritten(), resp.GetSkipped(), err
			}
			mu.Lock()
			s, ok := shardStreams[k]
			mu.Unlock()
			if !ok {
				var err error
				if s, err = cl.Upsert(sctx); err != nil {
					return 0, nil, err
				}
				mu.Lock()
				shardStreams[k] = s
				mu.Unlock()
			}
			if err := s.Send(&pb.UpsertRequest{Collection: ShardName(m.Name, k), Items: part, SkipInvalid: req.GetSkipInvalid()}); err != nil && !errors.Is(err, io.EOF) {
				return 0, nil, err
			}
			resp, err := s.Recv()
			return resp.GetWritten(), resp.GetSkipped(), err
		})
		if err != nil {
			return err
		}
		if err := stream.Send(&pb.UpsertResponse{Batch: batch, Written: w, Skipped: sk}); err != nil {
			return err
		}
		if req, err = stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
	}
	for k, s := range shardStreams {
		if err := s.CloseSend(); err != nil {
			return err
		}
		if _, err := s.Recv(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("shard %d: ending the load: %w", k, err)
		}
	}
	if len(replicated) > 0 {
		ends := make([]int, 0, len(replicated))
		for k := range replicated {
			ends = append(ends, k)
		}
		slices.Sort(ends)
		return r.endLoads(ctx, m, ends)
	}
	return nil
}

// replayStream gives the local service a stream whose first message was
// already read by the router.
type replayStream struct {
	pb.WPCDBService_UpsertServer
	first *pb.UpsertRequest
}

func (s *replayStream) Recv() (*pb.UpsertRequest, error) {
	if f := s.first; f != nil {
		s.first = nil
		return f, nil
	}
	return s.WPCDBService_UpsertServer.Recv()
}

func (r *Router) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if g := r.reps.group(req.GetCollection()); g != nil {
			resp, err := g.write(ctx, &pb.ReplicatedWrite{Write: &pb.ReplicatedWrite_Delete{Delete: req}})
			if err != nil {
				return nil, err
			}
			return resp.(*pb.DeleteResponse), nil
		}
		return r.WPCDBServiceServer.Delete(ctx, req)
	}
	ids := req.GetIds()
	groups := split(m, len(ids), func(i int) string { return ids[i] })
	var mu sync.Mutex
	var deleted uint32
	err := r.c.eachWrite(ctx, m, keys(groups), func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		resp, err := cl.Delete(ctx, &pb.DeleteRequest{Collection: ShardName(m.Name, k), Ids: pick(ids, groups[k])})
		mu.Lock()
		deleted += resp.GetDeleted()
		mu.Unlock()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &pb.DeleteResponse{Deleted: deleted}, nil
}

func pick[T any](s []T, idx []int) []T {
	out := make([]T, len(idx))
	for j, i := range idx {
		out[j] = s[i]
	}
	return out
}

// one runs f on the shard of id: a read (each) or a write (eachWrite).
func (r *Router) one(ctx context.Context, m ShardMap, id string, write bool, f func(ctx context.Context, cl pb.WPCDBServiceClient, shard string) error) error {
	k := ShardOf(id, len(m.Shards))
	run := r.c.each
	if write {
		run = r.c.eachWrite
	}
	return run(ctx, m, []int{k}, func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		return f(ctx, cl, ShardName(m.Name, k))
	})
}

func (r *Router) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if err := r.strongRead(ctx, req.GetCollection(), req.GetConsistency()); err != nil {
			return nil, err
		}
		return r.WPCDBServiceServer.Get(ctx, req)
	}
	var resp *pb.GetResponse
	err := r.one(ctx, m, req.GetId(), strong(req.GetConsistency()), func(ctx context.Context, cl pb.WPCDBServiceClient, shard string) (err error) {
		resp, err = cl.Get(ctx, &pb.GetRequest{Collection: shard, Id: req.GetId(), Consistency: req.GetConsistency()})
		return err
	})
	return resp, err
}

func (r *Router) UpdateAttrs(ctx context.Context, req *pb.UpdateAttrsRequest) (*pb.UpdateAttrsResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if g := r.reps.group(req.GetCollection()); g != nil {
			resp, err := g.write(ctx, &pb.ReplicatedWrite{Write: &pb.ReplicatedWrite_UpdateAttrs{UpdateAttrs: req}})
			if err != nil {
				return nil, err
			}
			return resp.(*pb.UpdateAttrsResponse), nil
		}
		return r.WPCDBServiceServer.UpdateAttrs(ctx, req)
	}
	var resp *pb.UpdateAttrsResponse
	err := r.one(ctx, m, req.GetId(), true, func(ctx context.Context, cl pb.WPCDBServiceClient, shard string) (err error) {
		sub := proto.CloneOf(req)
		sub.Collection = shard
		resp, err = cl.UpdateAttrs(ctx, sub)
		return err
	})
	return resp, err
}

// GetMany asks each shard for its IDs; items and missing IDs come back in
// the request's order, as from one node.
func (r *Router) GetMany(ctx context.Context, req *pb.GetManyRequest) (*pb.GetManyResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if err := r.strongRead(ctx, req.GetCollection(), req.GetConsistency()); err != nil {
			return nil, err
		}
		return r.WPCDBServiceServer.GetMany(ctx, req)
	}
	ids := req.GetIds()
	groups := split(m, len(ids), func(i int) string { return ids[i] })
	found := make([]*pb.Item, len(ids))
	err := r.c.read(req.GetConsistency())(ctx, m, keys(groups), func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		resp, err := cl.GetMany(ctx, &pb.GetManyRequest{Collection: ShardName(m.Name, k), Ids: pick(ids, groups[k]), Consistency: req.GetConsistency()})
		if err != nil {
			return err
		}
		byID := map[string]*pb.Item{}
		for _, it := range resp.GetItems() {
			byID[it.GetId()] = it
		}
		for _, i := range groups[k] {
			found[i] = byID[ids[i]]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &pb.GetManyResponse{}
	for i, it := range found {
		if it != nil {
			out.Items = append(out.Items, it)
		} else {
			out.Missing = append(out.Missing, ids[i])
		}
	}
	return out, nil
}

func (r *Router) Count(ctx context.Context, req *pb.CountRequest) (*pb.CountResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if err := r.strongRead(ctx, req.GetCollection(), req.GetConsistency()); err != nil {
			return nil, err
		}
		return r.WPCDBServiceServer.Count(ctx, req)
	}
	var mu sync.Mutex
	var n uint64
	err := r.c.read(req.GetConsistency())(ctx, m, allShards(len(m.Shards)), func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		resp, err := cl.Count(ctx, &pb.CountRequest{Collection: ShardName(m.Name, k), Filter: req.GetFilter(), Consistency: req.GetConsistency()})
		mu.Lock()
		n += resp.GetCount()
		mu.Unlock()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &pb.CountResponse{Count: n}, nil
}

// Scroll walks the shards in order: a cursor is "<shard>:<the shard's
// cursor>", and a page holds items of one shard only (it may be short
// where a shard ends; an empty next cursor still means the end).
func (r *Router) Scroll(ctx context.Context, req *pb.ScrollRequest) (*pb.ScrollResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if err := r.strongRead(ctx, req.GetCollection(), req.GetConsistency()); err != nil {
			return nil, err
		}
		return r.WPCDBServiceServer.Scroll(ctx, req)
	}
	k, inner := 0, ""
	if cur := req.GetCursor(); cur != "" {
		ks, rest, found := strings.Cut(cur, ":")
		var err error
		k, err = strconv.Atoi(ks)
		if !found || err != nil || k < 0 || k >= len(m.Shards) {
			return nil, status.Errorf(codes.InvalidArgument, "cursor: %q is not a cursor of collection %q", cur, m.Name)
		}
		inner = rest
	}
	for {
		var resp *pb.ScrollResponse
		err := r.c.read(req.GetConsistency())(ctx, m, []int{k}, func(ctx context.Context, cl pb.WPCDBServiceClient, k int) (err error) {
			sub := proto.CloneOf(req)
			sub.Collection, sub.Cursor = ShardName(m.Name, k), inner
			resp, err = cl.Scroll(ctx, sub)
			return err
		})
		if err != nil {
			return nil, err
		}
		if resp.GetNextCursor() != "" {
			resp.NextCursor = strconv.Itoa(k) + ":" + resp.GetNextCursor()
			return resp, nil
		}
		if k++; k == len(m.Shards) {
			return resp, nil
		}
		inner = ""
		if len(resp.GetItems()) > 0 {
			resp.NextCursor = strconv.Itoa(k) + ":"
			return resp, nil
		}
	}
}

// mergeHits sorts the shards' hits by the one order of results (score
// descending, then ID: internal/order) and keeps [offset, offset+k).
func mergeHits(hits []*pb.Hit, offset, k int) []*pb.Hit {
	slices.SortFunc(hits, func(a, b *pb.Hit) int { return order.Compare(a.GetScore(), a.GetId(), b.GetScore(), b.GetId()) })
	hits = hits[min(offset, len(hits)):]
	return hits[:min(k, len(hits))]
}

// defaultK is the core's k when a request gives 0.
const defaultK = 10

// Search fans out to every shard's leader for its exact top offset+k and
// merges: every score is exact, so the merged page is the page one node
// holding every item returns (for the same candidates). The stats add up
// over the shards (plan and first stage are shard 0's; times the
// slowest's, total the router's).
func (r *Router) Search(ctx context.Context, req *pb.SearchRequest) (*pb.SearchResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if err := r.strongRead(ctx, req.GetCollection(), req.GetConsistency()); err != nil {
			return nil, err
		}
		return r.WPCDBServiceServer.Search(ctx, req)
	}
	return r.search(ctx, m, req)
}

func (r *Router) search(ctx context.Context, m ShardMap, req *pb.SearchRequest) (*pb.SearchResponse, error) {
	start := time.Now()
	k := int(req.GetK())
	if k == 0 {
		k = defaultK
	}
	off := int(req.GetOffset())
	// A request the core refuses (k or offset out of range) goes to the
	// shards as it is, so the error is the core's.
	resps := make([]*pb.SearchResponse, len(m.Shards))
	err := r.c.read(req.GetConsistency())(ctx, m, allShards(len(m.Shards)), func(ctx context.Context, cl pb.WPCDBServiceClient, s int) (err error) {
		sub := proto.CloneOf(req)
		sub.Collection = ShardName(m.Name, s)
		if k > 0 && off >= 0 && k+off <= query.MaxK {
			sub.K, sub.Offset = int32(k+off), 0
		}
		resps[s], err = cl.Search(ctx, sub)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &pb.SearchResponse{ScoreMode: resps[0].GetScoreMode(), Stats: proto.CloneOf(resps[0].GetStats())}
	var hits []*pb.Hit
	for i, resp := range resps {
		hits = append(hits, resp.GetHits()...)
		if i == 0 {
			continue
		}
		st, s := out.Stats, resp.GetStats()
		st.Passing += s.GetPassing()
		st.Candidates += s.GetCandidates()
		st.Reranked += s.GetReranked()
		st.FirstStageMs = max(st.FirstStageMs, s.GetFirstStageMs())
		st.RerankMs = max(st.RerankMs, s.GetRerankMs())
	}
	out.Hits = mergeHits(hits, off, k)
	if out.Stats != nil {
		out.Stats.TotalMs = float64(time.Since(start).Microseconds()) / 1000
	}
	return out, nil
}

func (r *Router) BatchSearch(ctx context.Context, req *pb.BatchSearchRequest) (*pb.BatchSearchResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if err := r.strongRead(ctx, req.GetCollection(), req.GetConsistency()); err != nil {
			return nil, err
		}
		return r.WPCDBServiceServer.BatchSearch(ctx, req)
	}
	out := &pb.BatchSearchResponse{Results: make([]*pb.SearchResponse, len(req.GetQueries()))}
	for i, q := range req.GetQueries() {
		res, err := r.search(ctx, m, &pb.SearchRequest{Collection: m.Name, Query: q, K: req.GetK(), Exact: req.GetExact(),
			Candidates: req.GetCandidates(), Ef: req.GetEf(), Filter: req.GetFilter(), WithAttrs: req.GetWithAttrs(), Offset: req.GetOffset(), Consistency: req.GetConsistency()})
		if err != nil {
			st := status.Convert(err)
			return nil, status.Errorf(st.Code(), "queries[%d]: %s", i, st.Message())
		}
		out.Results[i] = res
	}
	return out, nil
}

// Rerank scores each shard's IDs there; hits merge in the one order and
// missing IDs come back in the request's order.
func (r *Router) Rerank(ctx context.Context, req *pb.RerankRequest) (*pb.RerankResponse, error) {
	m, ok := r.collection(ctx, req.GetCollection())
	if !ok {
		if err := r.strongRead(ctx, req.GetCollection(), req.GetConsistency()); err != nil {
			return nil, err
		}
		return r.WPCDBServiceServer.Rerank(ctx, req)
	}
	ids := req.GetIds()
	groups := split(m, len(ids), func(i int) string { return ids[i] })
	resps := make([]*pb.RerankResponse, len(m.Shards))
	err := r.c.read(req.GetConsistency())(ctx, m, keys(groups), func(ctx context.Context, cl pb.WPCDBServiceClient, k int) (err error) {
		sub := proto.CloneOf(req)
		sub.Collection, sub.Ids = ShardName(m.Name, k), pick(ids, groups[k])
		resps[k], err = cl.Rerank(ctx, sub)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &pb.RerankResponse{}
	missing := map[string]bool{}
	var hits []*pb.Hit
	for _, resp := range resps {
		if resp == nil {
			continue
		}
		if out.Stats == nil {
			out.Stats, out.ScoreMode = resp.GetStats(), resp.GetScoreMode()
		}
		hits = append(hits, resp.GetHits()...)
		for _, id := range resp.GetMissing() {
			missing[id] = true
		}
	}
	out.Hits = mergeHits(hits, 0, len(hits))
	for _, id := range ids {
		if missing[id] {
			out.Missing = append(out.Missing, id)
			delete(missing, id)
		}
	}
	return out, nil
}

func (r *Router) Calibrate(ctx context.Context, req *pb.CalibrateRequest) (*pb.CalibrateResponse, error) {
	if _, ok := r.collection(ctx, req.GetCollection()); !ok {
		return r.WPCDBServiceServer.Calibrate(ctx, req)
	}
	return nil, status.Errorf(codes.Unimplemented, "collection %q: calibrating a sharded collection on demand is not there yet (each shard calibrates at the end of an Upsert stream)", req.GetCollection())
}
