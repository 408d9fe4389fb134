package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"golang.org/x/sync/semaphore"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// maxBatchQueries bounds a BatchSearch: each query is a full search.
const maxBatchQueries = 1024

// service implements wpcdb.v1.WPCDBService over a DB. Handlers return the core's
// errors as they are; the status interceptor maps them (internal/rpcerr).
type service struct {
	pb.UnimplementedWPCDBServiceServer
	db           *wpcdb.DB
	snapshotRoot string
	importRoot   string
	importTo     func(ctx context.Context, name string) (ingest.Importer, error) // Options.ImportTo
	metrics      *metrics
	inflight     *semaphore.Weighted // floats of the requests being served
	inflightMax  int64
}

// admit reserves n floats of the in-flight budget, waiting for room until
// ctx ends; release returns them. A request larger than the whole budget
// is ResourceExhausted at once. Once admitted, the request's message no
// longer holds the receive budget (recvgate.go): the in-flight budget
// counts it.
func (s *service) admit(ctx context.Context, n int64) (release func(), err error) {
	if n > s.inflightMax {
		return nil, fmt.Errorf("%w: the request holds %d floats, the server admits at most %d at once", errResourceExhausted, n, s.inflightMax)
	}
	if err := s.inflight.Acquire(ctx, n); err != nil {
		return nil, err
	}
	releaseRecv(ctx)
	return func() { s.inflight.Release(n) }, nil
}

// itemOverheadFloats is what an upserted item costs beyond its points and
// weights, in floats: its φ (d for the linear block plus the random
// features of each nonlinear term) and a fixed allowance for its record.
func itemOverheadFloats(cfg wpcdb.CollectionConfig) int64 {
	n := int64(cfg.Dim) + 64
	for _, t := range cfg.Similarity.Kernel.Terms {
		if t.Kind == wpcsim.Gaussian || t.Kind == wpcsim.IMQ {
			n += int64(cfg.Features.Dim)
		}
	}
	return n
}

// cloudFloats counts the floats of a request's cloud.
func cloudFloats(c *pb.Cloud) int64 {
	n := int64(len(c.GetPoints()) + len(c.GetWeights()))
	if d := c.GetPointsData(); len(d) > 0 {
		n += int64(len(d) / 2) // a bound: float16 data decodes to len/2 floats, float32 to len/4
	}
	return n
}

func (s *service) collection(name string) (*wpcdb.Collection, error) {
	if name == "" {
		return nil, invalid("collection: name is required")
	}
	return s.db.Collection(name)
}

func (s *service) CreateCollection(ctx context.Context, req *pb.CreateCollectionRequest) (*pb.CreateCollectionResponse, error) {
	cfg, err := pbconv.ConfigFromPB(req.GetConfig())
	if err != nil {
		return nil, invalid("collection %q: config: %v", req.GetName(), err)
	}
	var c *wpcdb.Collection
	if fs := req.GetFeatureSample(); fs != nil {
		if cfg.Features.Dim != 0 || cfg.Features.Seed != 0 {
			return nil, invalid("collection %q: config: rff_dim and rff_seed must be 0 with an imported feature_sample", req.GetName())
		}
		c, err = s.db.CreateCollectionWithSample(ctx, req.GetName(), cfg, pbconv.SampleFromPB(fs, cfg.Dim))
	} else {
		c, err = s.db.CreateCollection(ctx, req.GetName(), cfg)
	}
	if err != nil {
		return nil, err
	}
	return &pb.CreateCollectionResponse{Collection: pbconv.InfoToPB(c.Describe())}, nil
}

func (s *service) DescribeCollection(ctx context.Context, req *pb.DescribeCollectionRequest) (*pb.DescribeCollectionResponse, error) {
	c, err := s.collection(req.GetName())
	if err != nil {
		return nil, err
	}
	return &pb.DescribeCollectionResponse{Collection: pbconv.InfoToPB(c.Describe())}, nil
}

func (s *service) ListCollections(ctx context.Context, req *pb.ListCollectionsRequest) (*pb.ListCollectionsResponse, error) {
	infos, err := s.db.ListCollections()
	if err != nil {
		return nil, err
	}
	out := &pb.ListCollectionsResponse{Collections: make([]*pb.CollectionInfo, len(infos))}
	for i, info := range infos {
		out.Collections[i] = pbconv.InfoToPB(info)
	}
	return out, nil
}

func (s *service) DropCollection(ctx context.Context, req *pb.DropCollectionRequest) (*pb.DropCollectionResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("collection: name is required")
	}
	if err := s.db.DropCollection(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &pb.DropCollectionResponse{}, nil
}

// Upsert commits each received batch with one durable, atomic write and
// acknowledges it. A refused batch ends the stream with its error (an
// InvalidItem detail names the item); batches acknowledged before it stay.
// A stream that ends well is a bulk load done: the collection calibrates
// its first stage if the stream grew it enough
// (wpcdb.Collection.LoadDoneAfter).
func (s *service) Upsert(stream pb.WPCDBService_UpsertServer) error {
	ctx := stream.Context()
	var c *wpcdb.Collection
	written := 0
	for batch := uint64(0); ; batch++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if c != nil {
				return c.LoadDoneAfter(ctx, written)
			}
			return nil
		}
		if err != nil {
			return streamErr(ctx, err)
		}
		if c == nil {
			if c, err = s.collection(req.GetCollection()); err != nil {
				return err
			}
		} else if name := req.GetCollection(); name != "" && name != c.Name() {
			return invalid("batch %d: collection %q: an Upsert stream writes to one collection (%q)", batch, name, c.Name())
		}
		release, err := s.admit(ctx, batchFloats(c, req.GetItems()))
		if err != nil {
			return err
		}
		res, err := upsertBatch(ctx, c, req)
		release()
		if err != nil {
			return err
		}
		s.metrics.ingested(c.Name(), res.GetWritten())
		written += int(res.GetWritten())
		res.Batch = batch
		if err := stream.Send(res); err != nil {
			return streamErr(ctx, err)
		}
	}
}

// batchFloats is what a batch of items holds against the in-flight
// budget. Each item also costs its φ (the first-stage vector), whatever
// its size: a batch of millions of one-point items is large too.
func batchFloats(c *wpcdb.Collection, items []*pb.Item) int64 {
	n := int64(len(items)) * itemOverheadFloats(c.Config())
	for _, it := range items {
		n += cloudFloats(it.GetCloud())
	}
	return n
}

// streamErr reports a failed Recv or Send: as the client's cancellation
// or deadline when that is what ended the stream (a closing transport
// otherwise reads as Unavailable, a server fault).
func streamErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// upsertBatch converts and writes one batch. Items whose attributes cannot
// be converted are invalid items like those the core refuses: they refuse
// the batch, or are skipped and reported with skip_invalid.
func upsertBatch(ctx context.Context, c *wpcdb.Collection, req *pb.UpsertRequest) (*pb.UpsertResponse, error) {
	skip := req.GetSkipInvalid()
	items := make([]wpcdb.Item, 0, len(req.GetItems()))
	index := make([]int, 0, len(req.GetItems())) // request index of items[j]
	var skipped []*pb.InvalidItem
	for i, p := range req.GetItems() {
		it, err := pbconv.ItemFromPB(p)
		if err != nil {
			if !skip {
				return nil, wpcdb.NewInvalidItem(i, it.ID, err)
			}
			skipped = append(skipped, &pb.InvalidItem{Index: uint32(i), Id: it.ID, Reason: err.Error()})
			continue
		}
		items = append(items, it)
		index = append(index, i)
	}
	res, err := c.UpsertWith(ctx, items, wpcdb.UpsertOptions{SkipInvalid: skip})
	var bad *wpcdb.InvalidItem
	if errors.As(err, &bad) {
		// Report the item by its index in the request.
		i := index[bad.Index]
		return nil, wpcdb.NewInvalidItem(i, bad.ID, bad.Cause)
	}
	if err != nil {
		return nil, err
	}
	for _, sk := range res.Skipped {
		skipped = append(skipped, &pb.InvalidItem{Index: uint32(index[sk.Index]), Id: sk.ID, Reason: sk.Cause.Error()})
	}
	sort.Slice(skipped, func(a, b int) bool { return skipped[a].Index < skipped[b].Index })
	return &pb.UpsertResponse{Written: uint32(res.Written), Skipped: skipped}, nil
}

func (s *service) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	n, err := c.Delete(ctx, req.GetIds()...)
	if err != nil {
		return nil, err
	}
	return &pb.DeleteResponse{Deleted: uint32(n)}, nil
}

func (s *service) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	if req.GetId() == "" {
		return nil, invalid("id: must not be empty")
	}
	it, err := c.Get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	item, err := pbconv.ItemToPB(it)
	if err != nil {
		return nil, err
	}
	return &pb.GetResponse{Item: item}, nil
}

// searchOptions builds the embedded search options; a malformed filter is
// the core's ErrInvalidArgument (InvalidArgument, with the column).
func searchOptions(k, candidates, ef, offset int32, exact, withAttrs bool, filter string) wpcdb.SearchOptions {
	return wpcdb.SearchOptions{K: int(k), Offset: int(offset), WithAttrs: withAttrs, Filter: filter, Exact: exact, Candidates: int(candidates), Ef: int(ef)}
}

// queryCloud unpacks a request's query cloud; field names it.
func queryCloud(field string, c *pb.Cloud) (wpcsim.Cloud, error) {
	q, err := pbconv.CloudFromPB(c)
	if err != nil {
		return q, invalid("%s: %v", field, err)
	}
	return q, nil
}

func (s *service) Search(ctx context.Context, req *pb.SearchRequest) (*pb.SearchResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	q, err := queryCloud("query", req.GetQuery())
	if err != nil {
		return nil, err
	}
	opts := searchOptions(req.GetK(), req.GetCandidates(), req.GetEf(), req.GetOffset(), req.GetExact(), req.GetWithAttrs(), req.GetFilter())
	release, err := s.admit(ctx, cloudFloats(req.GetQuery()))
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := c.Search(ctx, q, opts)
	if err != nil {
		return nil, err
	}
	return searchResponse(c, res)
}

func searchResponse(c *wpcdb.Collection, res wpcdb.SearchResult) (*pb.SearchResponse, error) {
	hits, err := pbconv.HitsToPB(res.Hits)
	if err != nil {
		return nil, err
	}
	return &pb.SearchResponse{Hits: hits, Stats: pbconv.StatsToPB(res.Stats),
		ScoreMode: pbconv.ScoreModeToPB(c.Config().Similarity.Score)}, nil
}

func (s *service) BatchSearch(ctx context.Context, req *pb.BatchSearchRequest) (*pb.BatchSearchResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	if n := len(req.GetQueries()); n > maxBatchQueries {
		return nil, invalid("queries: at most %d per BatchSearch, got %d", maxBatchQueries, n)
	}
	opts := searchOptions(req.GetK(), req.GetCandidates(), req.GetEf(), req.GetOffset(), req.GetExact(), req.GetWithAttrs(), req.GetFilter())
	var n int64
	for _, q := range req.GetQueries() {
		n += cloudFloats(q)
	}
	release, err := s.admit(ctx, n)
	if err != nil {
		return nil, err
	}
	defer release()
	out := &pb.BatchSearchResponse{Results: make([]*pb.SearchResponse, len(req.GetQueries()))}
	for i, pq := range req.GetQueries() {
		q, err := queryCloud(fmt.Sprintf("queries[%d]", i), pq)
		if err != nil {
			return nil, err
		}
		res, err := c.Search(ctx, q, opts)
		if err != nil {
			return nil, fmt.Errorf("queries[%d]: %w", i, err)
		}
		if out.Results[i], err = searchResponse(c, res); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *service) Rerank(ctx context.Context, req *pb.RerankRequest) (*pb.RerankResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	release, err := s.admit(ctx, cloudFloats(req.GetQuery()))
	if err != nil {
		return nil, err
	}
	defer release()
	q, err := queryCloud("query", req.GetQuery())
	if err != nil {
		return nil, err
	}
	res, err := c.RerankWith(ctx, q, req.GetIds(), wpcdb.RerankOptions{WithAttrs: req.GetWithAttrs()})
	if err != nil {
		return nil, err
	}
	r, err := searchResponse(c, res)
	if err != nil {
		return nil, err
	}
	return &pb.RerankResponse{Hits: r.Hits, Stats: r.Stats, ScoreMode: r.ScoreMode, Missing: res.Missing}, nil
}

// Calibrate chooses a collection's first-stage vector by measurement.
func (s *service) Calibrate(ctx context.Context, req *pb.CalibrateRequest) (*pb.CalibrateResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	if len(req.GetQueries()) > 1000 {
		return nil, invalid("queries: at most 1000, got %d", len(req.GetQueries()))
	}
	var n int64
	qs := make([]wpcsim.Cloud, len(req.GetQueries()))
	for i, q := range req.GetQueries() {
		if qs[i], err = queryCloud(fmt.Sprintf("queries[%d]", i), q); err != nil {
			return nil, err
		}
		n += cloudFloats(q)
	}
	release, err := s.admit(ctx, n)
	if err != nil {
		return nil, err
	}
	defer release()
	cal, err := c.Calibrate(ctx, qs)
	if err != nil {
		return nil, err
	}
	return pbconv.CalibrationToPB(cal), nil
}

// Snapshot writes a checkpoint of the whole database, first-stage indexes
// included, into a new directory under the snapshot root. The request gives
// a name, not a path (wpcdb.DB.CreateSnapshot). Without a root, snapshots
// are disabled.
func (s *service) Snapshot(ctx context.Context, req *pb.SnapshotRequest) (*pb.SnapshotResponse, error) {
	if s.snapshotRoot == "" {
		return nil, errSnapshotsDisabled
	}
	if req.GetDir() == "" {
		return nil, invalid("dir: required (a snapshot name)")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info, err := s.db.CreateSnapshot(s.snapshotRoot, req.GetDir())
	if err != nil {
		return nil, err
	}
	return &pb.SnapshotResponse{Dir: info.Dir}, nil
}

// ListSnapshots lists the snapshots under the snapshot root.
func (s *service) ListSnapshots(ctx context.Context, req *pb.ListSnapshotsRequest) (*pb.ListSnapshotsResponse, error) {
	if s.snapshotRoot == "" {
		return nil, errSnapshotsDisabled
	}
	infos, err := wpcdb.ListSnapshots(s.snapshotRoot)
	if err != nil {
		return nil, err
	}
	resp := &pb.ListSnapshotsResponse{}
	for _, in := range infos {
		resp.Snapshots = append(resp.Snapshots, pbconv.SnapshotToPB(in))
	}
	return resp, nil
}

// quoteShort quotes a request string for an error, cut when long.
func quoteShort(s string) string { return storage.QuoteID(s) }
