package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/server"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// bigBatch is an UpsertBatch of 3 items of 1024 points × 64 dims (768 KiB
// of coordinates): under a 1 MiB message limit, over the gate's small
// message size, so it keeps its receive reservation until admitted.
func bigBatch(c int) *pb.UpsertBatchRequest {
	req := &pb.UpsertBatchRequest{Collection: "big"}
	for i := range 3 {
		pts := make([]float32, 64*1024)
		for j := range pts {
			pts[j] = float32((c*7+i*3+j)%13) / 13
		}
		req.Items = append(req.Items, &pb.Item{Id: fmt.Sprintf("c%d-%d", c, i), Cloud: &pb.Cloud{Dim: 64, Points: pts}})
	}
	return req
}

// waitFor polls cond until it holds or 20 s pass (then the test fails:
// the state it waits for never came).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("never: %s", what)
		}
	}
}

// TestRecvGateBounds sends n concurrent large UpsertBatch requests to a
// server whose receive budget holds 2 of them: no more than 2 are ever
// being received at once (the first two are held inside their read until
// the other n-2 are seen waiting for room, where without the gate they
// would be read too), and every request succeeds. Then, with both places
// held, a request with a short deadline is refused cleanly and writes
// nothing.
func TestRecvGateBounds(t *testing.T) {
	const n, places = 6, 2
	ctx := context.Background()
	ts := startServer(t, &server.Options{MaxRecvBytes: 1 << 20, RecvBudgetBytes: places << 20})
	createPB(t, ts.cli, ctx, "big", wpcdb.CollectionConfig{Dim: 64, MaxPoints: 1024})
	if s := proto.Size(bigBatch(0)); s <= 64<<10 || s > 1<<20 {
		t.Fatalf("a batch is %d bytes: not a large message under the limit", s)
	}

	var maxHeld, entered atomic.Int64
	gate := make(chan struct{})
	var closeGate sync.Once
	server.SetRecvTestHook(ts.srv, func(held int64) {
		for {
			m := maxHeld.Load()
			if held <= m || maxHeld.CompareAndSwap(m, held) {
				break
			}
		}
		if entered.Add(1) <= places {
			<-gate // the first ones wait inside their read
		}
	})
	defer closeGate.Do(func() { close(gate) })
	errs := make([]error, n)
	var wg sync.WaitGroup
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[c] = ts.cli.UpsertBatch(ctx, bigBatch(c))
		}()
	}
	waitFor(t, fmt.Sprintf("%d requests reading and %d waiting", places, n-places), func() bool {
		return maxHeld.Load() > places || (entered.Load() == places && server.RecvWaiting(ts.srv) == n-places)
	})
	if m := maxHeld.Load(); m > places {
		t.Errorf("%d messages received at once, the budget holds %d", m, places)
	}
	closeGate.Do(func() { close(gate) })
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", c, err)
		}
	}
	if m := maxHeld.Load(); m > places {
		t.Errorf("%d messages received at once, the budget holds %d", m, places)
	}
	if c, _ := ts.db.Collection("big"); c.Count() != 3*n {
		t.Errorf("%d items, want %d", c.Count(), 3*n)
	}

	// Both places held: a request that cannot get one before its
	// deadline is refused, unread.
	entered.Store(0)
	gate = make(chan struct{})
	closeGate = sync.Once{}
	for c := range places {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ts.cli.UpsertBatch(ctx, bigBatch(100+c)); err != nil {
				t.Errorf("held request %d: %v", c, err)
			}
		}()
	}
	waitFor(t, "both places held", func() bool { return entered.Load() == places })
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := ts.cli.UpsertBatch(dctx, bigBatch(200))
	cancel()
	if code := status.Code(err); code != codes.ResourceExhausted && code != codes.DeadlineExceeded {
		t.Errorf("request without room: %v, want ResourceExhausted or DeadlineExceeded", err)
	}
	if got := entered.Load(); got != places {
		t.Errorf("%d messages read, want %d: the refused one was read", got, places)
	}
	closeGate.Do(func() { close(gate) })
	wg.Wait()
	if c, _ := ts.db.Collection("big"); c.Count() != 3*(n+places) {
		t.Errorf("%d items, want %d", c.Count(), 3*(n+places))
	}
}

// TestRecvGateAuth: a request without the token is refused before its
// message is read (it never enters the gate), as Unauthenticated.
func TestRecvGateAuth(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, &server.Options{Token: "s3cret", MaxRecvBytes: 1 << 20})
	var entered atomic.Int64
	server.SetRecvTestHook(ts.srv, func(int64) { entered.Add(1) })
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret")
	createPB(t, ts.cli, authed, "big", wpcdb.CollectionConfig{Dim: 64, MaxPoints: 1024})
	before := entered.Load()
	if _, err := ts.cli.UpsertBatch(ctx, bigBatch(0)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("upsert without token: %v, want Unauthenticated", err)
	}
	if got := entered.Load(); got != before {
		t.Errorf("the unauthenticated message was read (%d reads)", got-before)
	}
	if _, err := ts.cli.UpsertBatch(authed, bigBatch(0)); err != nil {
		t.Errorf("upsert with token: %v", err)
	}
	if got := entered.Load(); got != before+1 {
		t.Errorf("%d reads for one authenticated request", got-before)
	}
}

// TestRecvGateHTTP: REST bodies go through the gate too (the HTTP server
// reserves before it serves), and a REST request without the token is
// refused without its body being read.
func TestRecvGateHTTP(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, &server.Options{Token: "s3cret", HTTP: true, MaxRecvBytes: 1 << 20})
	var entered atomic.Int64
	server.SetRecvTestHook(ts.srv, func(int64) { entered.Add(1) })
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret")
	createPB(t, ts.cli, authed, "c", wpcdb.CollectionConfig{Dim: 2})
	body := `{"items": [{"id": "a", "cloud": {"dim": 2, "points": [1, 0]}}]}`
	post := func(token string) int {
		req, err := http.NewRequest("POST", "http://"+ts.addr+"/v1/collections/c/upsert", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	before := entered.Load()
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Errorf("REST upsert with a wrong token: HTTP %d, want 401", code)
	}
	if got := entered.Load(); got != before {
		t.Errorf("the unauthenticated body was read (%d reads)", got-before)
	}
	if code := post("s3cret"); code != http.StatusOK {
		t.Errorf("REST upsert: HTTP %d, want 200", code)
	}
	if got := entered.Load(); got != before+1 {
		t.Errorf("%d gated reads for one REST request, want 1", got-before)
	}
	if c, _ := ts.db.Collection("c"); c.Count() != 1 {
		t.Errorf("%d items, want 1", c.Count())
	}
}

// TestRecvTimeout: a sender that stalls inside its message (a raw HTTP/2
// client that sends the message's first bytes and stops) keeps its place
// in the receive budget for the receive timeout only: it ends
// DEADLINE_EXCEEDED, and a request waiting for that place then succeeds.
func TestRecvTimeout(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, &server.Options{MaxRecvBytes: 1 << 20, RecvBudgetBytes: 1 << 20, RecvTimeout: 300 * time.Millisecond})
	createPB(t, ts.cli, ctx, "big", wpcdb.CollectionConfig{Dim: 64, MaxPoints: 1024})
	var entered atomic.Int64
	server.SetRecvTestHook(ts.srv, func(int64) { entered.Add(1) })

	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/wpcdb.v1.WPCDBService/UpsertBatch"},
		{":authority", ts.addr}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	// A message of 4,096 bytes, of which 10 come.
	fr.WriteData(1, false, append([]byte{0, 0, 0, 0x10, 0}, make([]byte, 10)...))
	grpcStatus := make(chan string, 1)
	go func() {
		dec := hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				grpcStatus <- "read: " + err.Error()
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
				for _, hf := range fields {
					if hf.Name == "grpc-status" {
						grpcStatus <- hf.Value
						return
					}
				}
			}
		}
	}()
	waitFor(t, "the stalled message holding the place", func() bool { return entered.Load() == 1 })
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := ts.cli.UpsertBatch(dctx, bigBatch(0)); err != nil {
		t.Errorf("request behind a stalled sender: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a failing server never answers it
	if st := <-grpcStatus; st != fmt.Sprint(int(codes.DeadlineExceeded)) {
		t.Errorf("stalled sender's grpc-status %s, want %d", st, codes.DeadlineExceeded)
	}
}

// rawCodec sends a *rawMsg's bytes as they are (the client's proto codec
// would refuse a string that is not UTF-8) and decodes answers as proto.
type rawCodec struct{}

type rawMsg []byte

func (rawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(*rawMsg); ok {
		return *r, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (rawCodec) Unmarshal(b []byte, v any) error { return proto.Unmarshal(b, v.(proto.Message)) }
func (rawCodec) Name() string                    { return "proto" }

// TestInvalidUTF8: a string field that is not UTF-8 (an ID, a collection
// name) is InvalidArgument naming the field, for a unary call and in a
// stream, and writes nothing.
func TestInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, nil)
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	bad := func(m proto.Message, good string) *rawMsg {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		r := rawMsg(bytes.Replace(b, []byte(good), []byte("\xff\xfe"), 1))
		return &r
	}
	truncated := rawMsg{0x0a, 0x10, 'c'} // field 1, 16 bytes, of which 1 come
	for _, tc := range []struct {
		method, field string
		req           *rawMsg
		resp          proto.Message
	}{
		{"Get", "request: id is not valid UTF-8", bad(&pb.GetRequest{Collection: "c", Id: "zz"}, "zz"), &pb.GetResponse{}},
		{"Count", "request: collection is not valid UTF-8", bad(&pb.CountRequest{Collection: "zz"}, "zz"), &pb.CountResponse{}},
		{"UpsertBatch", "request: items[1].attrs.key is not valid UTF-8", bad(&pb.UpsertBatchRequest{Collection: "c", Items: []*pb.Item{{Id: "a", Cloud: &pb.Cloud{Dim: 2, Points: []float32{1, 0}}},
			{Id: "b", Cloud: &pb.Cloud{Dim: 2, Points: []float32{1, 0}}, Attrs: map[string]*structpb.Value{"zz": structpb.NewBoolValue(true)}}}}, "zz"), &pb.UpsertBatchResponse{}},
		{"Get", "request: the message does not decode", &truncated, &pb.GetResponse{}},
		{"UpsertBatch", "request: items[0].id is not valid UTF-8", bad(&pb.UpsertBatchRequest{Collection: "c", Items: []*pb.Item{{Id: "zz", Cloud: &pb.Cloud{Dim: 2, Points: []float32{1, 0}}}}}, "zz"), &pb.UpsertBatchResponse{}},
	} {
		err := ts.conn.Invoke(ctx, "/wpcdb.v1.WPCDBService/"+tc.method, tc.req, tc.resp, grpc.ForceCodec(rawCodec{}))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s with invalid UTF-8: %v, want InvalidArgument naming %s", tc.method, err, tc.field)
		}
	}
	// In an Upsert stream.
	st, err := ts.conn.NewStream(ctx, &pb.WPCDBService_ServiceDesc.Streams[0], "/wpcdb.v1.WPCDBService/Upsert", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	st.SendMsg(bad(&pb.UpsertRequest{Collection: "c", Items: []*pb.Item{{Id: "zz", Cloud: &pb.Cloud{Dim: 2, Points: []float32{1, 0}}}}}, "zz"))
	err = st.RecvMsg(&pb.UpsertResponse{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "request: items[0].id is not valid UTF-8") {
		t.Errorf("Upsert stream with invalid UTF-8: %v, want InvalidArgument naming items[0].id", err)
	}
	if c, _ := ts.db.Collection("c"); c.Count() != 0 {
		t.Errorf("%d items written, want 0", c.Count())
	}
}

// TestRecvTimeoutHTTP: a REST body that stalls keeps its place in the
// receive budget for the receive timeout only; a request waiting for that
// place then succeeds.
func TestRecvTimeoutHTTP(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, &server.Options{HTTP: true, MaxRecvBytes: 1 << 20, RecvBudgetBytes: 1 << 20, RecvTimeout: 300 * time.Millisecond})
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	url := "http://" + ts.addr + "/v1/collections/c/upsert"
	pr, pw := io.Pipe()
	defer pw.Close()
	stalled := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", url, pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				err = errors.New("HTTP 200")
			} else {
				err = nil // refused: what it should be
			}
		} else {
			err = nil // cut off: fine too
		}
		stalled <- err
	}()
	pw.Write([]byte(`{"items": [`)) // and no more
	waitFor(t, "the stalled body holding the place", func() bool { return server.RecvHeld(ts.srv) == 1 })
	hc := &http.Client{Timeout: 20 * time.Second} // a failing server never answers it
	resp, err := hc.Post(url, "application/json", strings.NewReader(`{"items": [{"id": "a", "cloud": {"dim": 2, "points": [1, 0]}}]}`))
	if err != nil {
		t.Fatalf("request behind a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("request behind a stalled body: HTTP %d", resp.StatusCode)
	}
	if err := <-stalled; err != nil {
		t.Errorf("the stalled request: %v", err)
	}
	if c, _ := ts.db.Collection("c"); c.Count() != 1 {
		t.Errorf("%d items, want 1", c.Count())
	}
}
