package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// ShardedWriter writes an import's batches into a sharded collection: the
// node that reads the files (the server's Import, through
// server.Options.ImportTo) commits each batch as the router commits an
// UpsertBatch: checked whole, then split by shard and written on every
// shard's leader at once, so a batch holding an invalid item writes
// nothing. LoadDone ends the load on every shard written to, as the end of
// an Upsert stream does, so each shard builds or calibrates its first
// stage. It satisfies ingest.Importer (cluster sits below ingest and does
// not name it).
type ShardedWriter struct {
	r   *Router
	m   ShardMap
	cfg wpcdb.CollectionConfig

	mu      sync.Mutex
	touched map[int]bool // shards written to
}

// Importer returns the writer for an import into the sharded collection
// name (an error wrapping wpcdb.ErrCollectionNotFound when there is none:
// the node's own collections import locally). The shard map is the one
// current now, as an Upsert stream keeps its first; a collection created
// through another node a moment ago is found as the router's requests
// find it (Router.collection).
func (r *Router) Importer(ctx context.Context, name string) (*ShardedWriter, error) {
	m, ok := r.collection(ctx, name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", wpcdb.ErrCollectionNotFound, name)
	}
	var pcfg pb.CollectionConfig
	if err := protojson.Unmarshal(m.Config, &pcfg); err != nil {
		return nil, status.Errorf(codes.Internal, "collection %q: catalog config: %v", m.Name, err)
	}
	cfg, err := pbconv.ConfigFromPB(&pcfg)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "collection %q: catalog config: %v", m.Name, err)
	}
	return &ShardedWriter{r: r, m: m, cfg: cfg, touched: map[int]bool{}}, nil
}

// Config is the collection's configuration, which the files are checked
// against before anything is written.
func (w *ShardedWriter) Config() wpcdb.CollectionConfig { return w.cfg }

// UpsertWith writes one batch. A refused item comes back as the
// *wpcdb.InvalidItem one node returns (its index in this batch), so the
// import names its row.
func (w *ShardedWriter) UpsertWith(ctx context.Context, items []wpcdb.Item, opts wpcdb.UpsertOptions) (wpcdb.UpsertResult, error) {
	parts := make([]*pb.Item, len(items))
	for i, it := range items {
		p, err := pbconv.ItemToPB(it)
		if err != nil {
			return wpcdb.UpsertResult{}, wpcdb.NewInvalidItem(i, it.ID, err)
		}
		parts[i] = p
	}
	written, skipped, err := w.r.upsertParts(ctx, w.m, parts, opts.SkipInvalid, func(ctx context.Context, cl pb.WPCDBServiceClient, k int, part []*pb.Item) (uint32, []*pb.InvalidItem, error) {
		w.mu.Lock()
		w.touched[k] = true
		w.mu.Unlock()
		resp, err := cl.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: ShardName(w.m.Name, k), Items: part, SkipInvalid: opts.SkipInvalid})
		return resp.GetWritten(), resp.GetSkipped(), err
	})
	if err != nil {
		return wpcdb.UpsertResult{}, invalidItemOf(err)
	}
	res := wpcdb.UpsertResult{Written: int(written)}
	for _, s := range skipped {
		res.Skipped = append(res.Skipped, wpcdb.InvalidItem{Index: int(s.GetIndex()), ID: s.GetId(), Cause: errors.New(s.GetReason())})
	}
	return res, nil
}

// LoadDone ends the load on the shards written to.
func (w *ShardedWriter) LoadDone(ctx context.Context) error {
	w.mu.Lock()
	shards := make([]int, 0, len(w.touched))
	for k := range w.touched {
		shards = append(shards, k)
	}
	w.mu.Unlock()
	slices.Sort(shards)
	return w.r.endLoads(ctx, w.m, shards)
}

// invalidItemOf turns a refusal naming an item (a status with an
// InvalidItem detail, from the router's check or a shard) back into the
// *wpcdb.InvalidItem it was; any other error is returned as it is.
func invalidItemOf(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return err
	}
	for _, d := range st.Details() {
		if bad, ok := d.(*pb.InvalidItem); ok {
			return &wpcdb.InvalidItem{Index: int(bad.GetIndex()), ID: bad.GetId(),
				Err: fmt.Errorf("%w: %s", wpcdb.ErrInvalidArgument, st.Message()), Cause: errors.New(bad.GetReason())}
		}
	}
	return err
}

// Import refuses an import into a replicated shard's local collection
// (its writes go through the shard's Raft group: import into the sharded
// collection); every other import is the local service's, which reads the
// files and writes them locally or, for a sharded collection, through
// Importer.
func (r *Router) Import(req *pb.ImportRequest, stream pb.WPCDBService_ImportServer) error {
	if r.reps.group(req.GetCollection()) != nil {
		return status.Errorf(codes.FailedPrecondition, "collection %q is a replica of a shard: import into its sharded collection", req.GetCollection())
	}
	return r.WPCDBServiceServer.Import(req, stream)
}
