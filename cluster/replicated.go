package cluster

import (
	"context"
	"errors"
	"io"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// replicatedUpsert writes a batch to a replicated shard this node runs:
// it is validated as one node validates it (an invalid item refuses the
// batch, or with skip_invalid is left out and reported), and only the
// valid items are proposed, so that no invalid item enters the log. The
// answer comes once the entry is applied here.
func (r *Router) replicatedUpsert(ctx context.Context, g *group, req *pb.UpsertBatchRequest) (*pb.UpsertBatchResponse, error) {
	m, ok := r.c.view.Collection(g.coll)
	if !ok || m.UID != g.uid {
		return nil, status.Errorf(codes.NotFound, "collection %q: no longer in the cluster's catalog", g.coll)
	}
	items, index, skipped, err := validItems(m, req.GetItems(), req.GetSkipInvalid())
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &pb.UpsertBatchResponse{Skipped: skipped}, nil
	}
	w := &pb.ReplicatedWrite{Write: &pb.ReplicatedWrite_Upsert{Upsert: &pb.UpsertBatchRequest{Collection: g.name, Items: items}}}
	if err := checkEntrySize(w, MaxEntryBytes); err != nil {
		return nil, err
	}
	resp, err := g.write(ctx, w)
	if err != nil {
		return nil, remapInvalid(err, index)
	}
	out := resp.(*pb.UpsertBatchResponse)
	return &pb.UpsertBatchResponse{Written: out.GetWritten(), Skipped: skipped}, nil
}

// validItems checks a batch against the collection's configuration
// (checkItems): without skip, the first invalid item refuses it; with
// skip, the invalid items are left out and reported by their index.
// index[j] is the request index of items[j].
func validItems(m ShardMap, in []*pb.Item, skip bool) (items []*pb.Item, index []int, skipped []*pb.InvalidItem, err error) {
	items = in
	index = make([]int, len(in))
	for i := range index {
		index[i] = i
	}
	for {
		err := checkItems(m, items)
		if err == nil {
			return items, index, skipped, nil
		}
		if !skip {
			return nil, nil, nil, err
		}
		var bad *pb.InvalidItem
		for _, d := range status.Convert(err).Details() {
			if b, ok := d.(*pb.InvalidItem); ok && int(b.GetIndex()) < len(items) {
				bad = b
			}
		}
		if bad == nil {
			return nil, nil, nil, err
		}
		j := int(bad.GetIndex())
		skipped = append(skipped, &pb.InvalidItem{Index: uint32(index[j]), Id: bad.GetId(), Reason: bad.GetReason()})
		items = slices.Delete(slices.Clone(items), j, j+1)
		index = slices.Delete(index, j, j+1)
	}
}

// replicatedUpsertStream serves an Upsert stream naming a replicated
// shard this node runs: each batch is one replicated write, and the
// stream's end one more (LoadDone), so that every replica ends the load
// where one node would. The router ends its streams into replicated
// shards this way (endLoads).
func (r *Router) replicatedUpsertStream(g *group, stream pb.WPCDBService_UpsertServer, first *pb.UpsertRequest) error {
	ctx := stream.Context()
	req := first
	for batch := uint64(0); ; batch++ {
		if name := req.GetCollection(); batch > 0 && name != "" && name != g.name {
			return status.Errorf(codes.InvalidArgument, "batch %d: collection %q: an Upsert stream writes to one collection (%q)", batch, name, g.name)
		}
		resp, err := r.replicatedUpsert(ctx, g, &pb.UpsertBatchRequest{Collection: g.name, Items: req.GetItems(), SkipInvalid: req.GetSkipInvalid()})
		if err != nil {
			return err
		}
		if err := stream.Send(&pb.UpsertResponse{Batch: batch, Written: resp.GetWritten(), Skipped: resp.GetSkipped()}); err != nil {
			return err
		}
		var rerr error
		if req, rerr = stream.Recv(); errors.Is(rerr, io.EOF) {
			// The end of the load, at this point of the log on every
			// replica.
			_, err := g.write(ctx, &pb.ReplicatedWrite{Write: &pb.ReplicatedWrite_LoadDone{LoadDone: &pb.LoadDone{}}})
			return err
		} else if rerr != nil {
			return rerr
		}
	}
}

// MaxEntryBytes bounds a replicated write's log entry: it travels to the
// other replicas as one message, which their servers must accept (their
// --max-recv-mb, 64 MiB by default, must exceed it). A larger upsert
// batch is refused before it is proposed; the CLI's largest batch (8 Mi
// floats, 32 MiB) is far below.
const MaxEntryBytes = 60 << 20

// checkEntrySize refuses a write whose entry is over limit bytes.
func checkEntrySize(w *pb.ReplicatedWrite, limit int) error {
	if n := proto.Size(w); n > limit {
		return status.Errorf(codes.ResourceExhausted, "shard write of %d bytes: a replicated write's log entry is at most %d bytes; send smaller batches", n, limit)
	}
	return nil
}

func strong(c pb.Consistency) bool { return c == pb.Consistency_CONSISTENCY_STRONG }

// read is how a read of consistency c runs on shards: a strong one on
// each shard's leader only, retried as a write is (a replica that no
// longer leads refuses it), the others on any live replica (each).
func (c *Client) read(cons pb.Consistency) func(ctx context.Context, m ShardMap, shards []int, f func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error) error {
	if strong(cons) {
		return c.eachWrite
	}
	return c.each
}

// strongRead prepares a strong read of a replicated shard this node runs
// (group.linearize); other reads, and reads of other collections (a
// single node is always strong), need nothing.
func (r *Router) strongRead(ctx context.Context, name string, cons pb.Consistency) error {
	if !strong(cons) {
		return nil
	}
	if g := r.reps.group(name); g != nil {
		return g.linearize(ctx)
	}
	return nil
}

// endLoads ends the load of each replicated shard an Upsert stream wrote
// (batches to those go one UpsertBatch call each): a stream of one empty
// batch to the shard's leader, whose end is a LoadDone entry; retried as
// a write is (ending a load twice is harmless).
func (r *Router) endLoads(ctx context.Context, m ShardMap, shards []int) error {
	return r.c.eachWrite(ctx, m, shards, func(ctx context.Context, cl pb.WPCDBServiceClient, k int) error {
		s, err := cl.Upsert(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&pb.UpsertRequest{Collection: ShardName(m.Name, k)}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if _, err := s.Recv(); err != nil {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		if _, err := s.Recv(); !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	})
}
