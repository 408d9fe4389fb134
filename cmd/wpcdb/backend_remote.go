package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// remote is the backend of --addr: a gRPC client of `wpcdb serve`.
type remote struct {
	conn *grpc.ClientConn
	cli  pb.WPCDBServiceClient
	// consistency goes with every read (--consistency).
	consistency pb.Consistency
}

// maxClientRecvBytes bounds a response (a Get of a large cloud, a big
// BatchSearch).
const maxClientRecvBytes = 1 << 30

// dial connects to --addr: plaintext, or TLS verified against --tls-ca,
// sending the token (--token, --token-file or $WPCDB_TOKEN) as a bearer
// token.
func (a *app) dial() (*remote, error) {
	token, err := a.clientToken()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if a.g.tls && a.g.tlsCA == "" {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12}) // the system's roots
	}
	if a.g.tlsCA != "" {
		pem, err := os.ReadFile(a.g.tlsCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", a.g.tlsCA)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxClientRecvBytes)),
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(a.g.addr, opts...)
	if err != nil {
		return nil, usageError{fmt.Errorf("--addr %s: %w", a.g.addr, err)}
	}
	r := &remote{conn: conn, cli: pb.NewWPCDBServiceClient(conn)}
	if a.g.consistency == "strong" {
		r.consistency = pb.Consistency_CONSISTENCY_STRONG
	}
	return r, nil
}

// bearer sends "authorization: Bearer <token>" with every call. It allows
// plaintext, for a server on loopback; use --tls-ca across a network.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// rpcError is an error from the server: printed as "<Code>: <message>".
type rpcError struct{ st *status.Status }

func (e *rpcError) Error() string {
	msg := e.st.Code().String() + ": " + e.st.Message()
	if hint := transportHint(e.st); hint != "" {
		msg += " (" + hint + ")"
	}
	return msg
}

// transportHint explains the transport failures that otherwise read as
// riddles: a plaintext client hanging up on a TLS server's handshake reads
// "error reading server preface: EOF", a TLS client talking to a plaintext
// server "first record does not look like a TLS handshake".
func transportHint(st *status.Status) string {
	if st.Code() != codes.Unavailable {
		return ""
	}
	switch m := st.Message(); {
	case strings.Contains(m, "server preface"):
		return "is the server serving TLS? then pass --tls-ca with its CA certificate"
	case strings.Contains(m, "does not look like a TLS handshake"), strings.Contains(m, "tls: first record"):
		return "the server is plaintext: drop --tls-ca"
	}
	return ""
}
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// fromRPC turns a call's error into an rpcError (or the context's error
// when the command itself was interrupted).
func fromRPC(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return &rpcError{status.Convert(err)}
}

func (r *remote) Close() error { return r.conn.Close() }

func (r *remote) CreateCollection(ctx context.Context, name string, cfg wpcdb.CollectionConfig, sample *wpcsim.FeatureSample) (wpcdb.CollectionInfo, error) {
	req := &pb.CreateCollectionRequest{Name: name, Config: pbconv.ConfigToPB(cfg)}
	if sample != nil {
		// The sample fixes D; the seed does not apply.
		req.Config.RffDim, req.Config.RffSeed = 0, 0
		req.FeatureSample = pbconv.SampleToPB(*sample)
	}
	resp, err := r.cli.CreateCollection(ctx, req)
	if err != nil {
		return wpcdb.CollectionInfo{}, fromRPC(ctx, err)
	}
	return pbconv.InfoFromPB(resp.GetCollection())
}

func (r *remote) ListCollections(ctx context.Context) ([]wpcdb.CollectionInfo, error) {
	resp, err := r.cli.ListCollections(ctx, &pb.ListCollectionsRequest{})
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	out := make([]wpcdb.CollectionInfo, 0, len(resp.GetCollections()))
	for _, c := range resp.GetCollections() {
		info, err := pbconv.InfoFromPB(c)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func (r *remote) DescribeCollection(ctx context.Context, name string) (wpcdb.CollectionInfo, error) {
	resp, err := r.cli.DescribeCollection(ctx, &pb.DescribeCollectionRequest{Name: name})
	if err != nil {
		return wpcdb.CollectionInfo{}, fromRPC(ctx, err)
	}
	return pbconv.InfoFromPB(resp.GetCollection())
}

func (r *remote) DropCollection(ctx context.Context, name string) error {
	_, err := r.cli.DropCollection(ctx, &pb.DropCollectionRequest{Name: name})
	return fromRPC(ctx, err)
}

func (r *remote) Get(ctx context.Context, coll, id string) (wpcdb.Item, error) {
	resp, err := r.cli.Get(ctx, &pb.GetRequest{Collection: coll, Id: id, Consistency: r.consistency})
	if err != nil {
		return wpcdb.Item{}, fromRPC(ctx, err)
	}
	return pbconv.ItemFromPB(resp.GetItem())
}

func (r *remote) Delete(ctx context.Context, coll string, ids []string) (int, error) {
	resp, err := r.cli.Delete(ctx, &pb.DeleteRequest{Collection: coll, Ids: ids})
	if err != nil {
		return 0, fromRPC(ctx, err)
	}
	return int(resp.GetDeleted()), nil
}

// searchRequest builds a Search request from the embedded options.
func searchRequest(coll string, q wpcsim.Cloud, opts wpcdb.SearchOptions) *pb.SearchRequest {
	return &pb.SearchRequest{Collection: coll, Query: pbconv.CloudToPB(q), K: clampInt32(opts.K), Filter: opts.Filter, Exact: opts.Exact,
		Candidates: clampInt32(opts.Candidates), Ef: clampInt32(opts.Ef), Offset: clampInt32(opts.Offset), WithAttrs: opts.WithAttrs}
}

// clampInt32 keeps an out-of-range flag value out of range on the wire, so
// the server refuses it instead of seeing a wrapped-around number.
func clampInt32(v int) int32 {
	return int32(max(min(v, 1<<31-1), -1<<31))
}

func (r *remote) Search(ctx context.Context, coll string, q wpcsim.Cloud, opts wpcdb.SearchOptions) (hits, error) {
	req := searchRequest(coll, q, opts)
	req.Consistency = r.consistency
	resp, err := r.cli.Search(ctx, req)
	if err != nil {
		return hits{}, fromRPC(ctx, err)
	}
	return hitsFromPB(resp.GetHits(), resp.GetStats(), resp.GetScoreMode())
}

func (r *remote) Rerank(ctx context.Context, coll string, q wpcsim.Cloud, ids []string) (hits, error) {
	resp, err := r.cli.Rerank(ctx, &pb.RerankRequest{Collection: coll, Query: pbconv.CloudToPB(q), Ids: ids, Consistency: r.consistency})
	if err != nil {
		return hits{}, fromRPC(ctx, err)
	}
	h, err := hitsFromPB(resp.GetHits(), resp.GetStats(), resp.GetScoreMode())
	h.Missing = resp.GetMissing()
	return h, err
}

func (r *remote) GetMany(ctx context.Context, coll string, ids []string) ([]wpcdb.Item, []string, error) {
	resp, err := r.cli.GetMany(ctx, &pb.GetManyRequest{Collection: coll, Ids: ids, Consistency: r.consistency})
	if err != nil {
		return nil, nil, fromRPC(ctx, err)
	}
	items := make([]wpcdb.Item, len(resp.GetItems()))
	for i, p := range resp.GetItems() {
		if items[i], err = pbconv.ItemFromPB(p); err != nil {
			return nil, nil, err
		}
	}
	return items, resp.GetMissing(), nil
}

func (r *remote) Scroll(ctx context.Context, coll string, opts wpcdb.ScrollOptions) (wpcdb.ScrollPage, error) {
	resp, err := r.cli.Scroll(ctx, &pb.ScrollRequest{Collection: coll, Filter: opts.Filter, Cursor: opts.Cursor, Limit: clampInt32(opts.Limit), WithClouds: opts.WithClouds, Consistency: r.consistency})
	if err != nil {
		return wpcdb.ScrollPage{}, fromRPC(ctx, err)
	}
	page := wpcdb.ScrollPage{Items: make([]wpcdb.Item, len(resp.GetItems())), NextCursor: resp.GetNextCursor()}
	for i, p := range resp.GetItems() {
		if page.Items[i], err = pbconv.ItemFromPB(p); err != nil {
			return wpcdb.ScrollPage{}, err
		}
	}
	return page, nil
}

func (r *remote) Count(ctx context.Context, coll, filter string) (int, error) {
	resp, err := r.cli.Count(ctx, &pb.CountRequest{Collection: coll, Filter: filter, Consistency: r.consistency})
	if err != nil {
		return 0, fromRPC(ctx, err)
	}
	return int(resp.GetCount()), nil
}

func (r *remote) UpdateAttrs(ctx context.Context, coll, id string, set map[string]any, unset []string) (map[string]any, error) {
	pset, err := pbconv.AttrsToPB(set)
	if err != nil {
		return nil, err
	}
	resp, err := r.cli.UpdateAttrs(ctx, &pb.UpdateAttrsRequest{Collection: coll, Id: id, Set: pset, Unset: unset})
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return pbconv.AttrsFromPB(resp.GetAttrs())
}

func hitsFromPB(h []*pb.Hit, st *pb.SearchStats, mode pb.ScoreMode) (hits, error) {
	score, err := pbconv.ScoreModeFromPB(mode)
	if err != nil {
		return hits{}, err
	}
	hs, err := pbconv.HitsFromPB(h)
	return hits{wpcdb.SearchResult{Hits: hs, Stats: pbconv.StatsFromPB(st)}, score}, err
}

func (r *remote) Ingest(ctx context.Context, coll string) (ingestTarget, error) {
	info, err := r.DescribeCollection(ctx, coll)
	if err != nil {
		return nil, err
	}
	return &remoteTarget{ctx: ctx, cli: r.cli, name: coll, cfg: info.Config}, nil
}

// remoteTarget sends an ingest's batches on one Upsert stream, one request
// per batch, and waits for each acknowledgement (the batch is then
// durable) before the next: a refused batch ends the ingest exactly as
// embedded.
type remoteTarget struct {
	ctx    context.Context // the stream's: the whole ingest
	cli    pb.WPCDBServiceClient
	name   string
	cfg    wpcdb.CollectionConfig
	stream pb.WPCDBService_UpsertClient
	cancel context.CancelFunc
	failed bool // the stream ended with an error, already returned
}

func (t *remoteTarget) Config() wpcdb.CollectionConfig { return t.cfg }

func (t *remoteTarget) UpsertWith(ctx context.Context, items []wpcdb.Item, opts wpcdb.UpsertOptions) (wpcdb.UpsertResult, error) {
	req := &pb.UpsertRequest{SkipInvalid: opts.SkipInvalid, Items: make([]*pb.Item, len(items))}
	for i, it := range items {
		p, err := pbconv.ItemToPB(it)
		if err != nil {
			return wpcdb.UpsertResult{}, err
		}
		req.Items[i] = p
	}
	if t.stream == nil {
		sctx, cancel := context.WithCancel(t.ctx)
		stream, err := t.cli.Upsert(sctx)
		if err != nil {
			cancel()
			return wpcdb.UpsertResult{}, fromRPC(ctx, err)
		}
		t.stream, t.cancel = stream, cancel
		req.Collection = t.name
	}
	// Abandoning this batch (ctx ends) abandons the stream: the server
	// then stops its work too.
	defer context.AfterFunc(ctx, t.cancel)()
	if err := t.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		t.failed = true
		return wpcdb.UpsertResult{}, fromRPC(ctx, err)
	} // on io.EOF the server ended the stream; Recv has its status
	ack, err := t.stream.Recv()
	if err != nil {
		t.failed = true
		return wpcdb.UpsertResult{}, upsertError(ctx, err)
	}
	res := wpcdb.UpsertResult{Written: int(ack.GetWritten())}
	for _, s := range ack.GetSkipped() {
		res.Skipped = append(res.Skipped, wpcdb.InvalidItem{Index: int(s.GetIndex()), ID: s.GetId(), Cause: errors.New(s.GetReason())})
	}
	return res, nil
}

// upsertError turns a refused batch's status into the *wpcdb.InvalidItem
// the ingest reports (its Cause keeps the gRPC code for printing).
func upsertError(ctx context.Context, err error) error {
	err = fromRPC(ctx, err)
	var re *rpcError
	if !errors.As(err, &re) {
		return err
	}
	for _, d := range re.st.Details() {
		if bad, ok := d.(*pb.InvalidItem); ok {
			cause := &rpcError{status.New(re.st.Code(), bad.GetReason())}
			return &wpcdb.InvalidItem{Index: int(bad.GetIndex()), ID: bad.GetId(), Err: err, Cause: cause}
		}
	}
	return err
}

// Close ends the stream and waits for the server to finish it.
func (t *remoteTarget) Close() error {
	if t.stream == nil {
		return nil
	}
	defer t.cancel()
	if t.failed {
		return nil // its error was returned by UpsertWith
	}
	if err := t.stream.CloseSend(); err != nil {
		return &rpcError{status.Convert(err)}
	}
	if _, err := t.stream.Recv(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("Upsert: the server acknowledged a batch that was not sent")
		}
		return &rpcError{status.Convert(err)}
	}
	return nil
}

func (r *remote) Calibrate(ctx context.Context, coll string, queries []wpcsim.Cloud) (wpcdb.Calibration, error) {
	req := &pb.CalibrateRequest{Collection: coll}
	for _, q := range queries {
		req.Queries = append(req.Queries, pbconv.CloudToPB(q))
	}
	resp, err := r.cli.Calibrate(ctx, req)
	if err != nil {
		return wpcdb.Calibration{}, fromRPC(ctx, err)
	}
	return pbconv.CalibrationFromPB(resp), nil
}
