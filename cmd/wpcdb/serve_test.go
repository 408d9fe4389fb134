package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// lockedBuffer is a bytes.Buffer safe for a server's goroutines to write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitServing polls the health service until the server answers.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && h.Status == healthpb.HealthCheckResponse_SERVING {
			return
		}
	}
	t.Fatalf("server at %s never became healthy", addr)
}

// TestServe runs `wpcdb serve` with a token file and metrics, then stops it
// as SIGINT would (its context ends).
func TestServe(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok\n"), 0o600)
	addr, maddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", filepath.Join(dir, "data"), "--listen", addr, "--metrics-listen", maddr, "--token-file", tokenFile}, strings.NewReader(""), &stdout, &stderr)
	}()
	waitServing(t, addr)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cli := pb.NewWPCDBServiceClient(conn)
	if _, err := cli.ListCollections(context.Background(), &pb.ListCollectionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no token: %v", err)
	}
	authed := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok")
	if _, err := cli.CreateCollection(authed, &pb.CreateCollectionRequest{Name: "c", Config: &pb.CollectionConfig{Dim: 3}}); err != nil {
		t.Errorf("create with token: %v", err)
	}
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="ListCollections",grpc_service="wpcdb.v1.WPCDBService",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="CreateCollection",grpc_service="wpcdb.v1.WPCDBService",grpc_type="unary"} 1`,
		`grpc_server_handling_seconds_bucket{grpc_method="CreateCollection",grpc_service="wpcdb.v1.WPCDBService",grpc_type="unary",le="+Inf"} 1`,
		`wpcdb_collection_items{collection="c"} 0`,
		`go_goroutines`,
		`wpcdb_build_info{goversion="go1.`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The version is in health, over gRPC (a header) and HTTP.
	v, _ := buildVersion()
	var hdr metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil || len(hdr.Get("wpcdb-version")) != 1 || hdr.Get("wpcdb-version")[0] != v {
		t.Errorf("health: header %v, %v; want wpcdb-version %q", hdr, err, v)
	}
	if !strings.Contains(string(body), `wpcdb_build_info{goversion="go1.`) || !strings.Contains(string(body), `version="`+v+`"`) {
		t.Errorf("/metrics: wpcdb_build_info lacks version %q", v)
	}
	hresp, err := http.Get("http://" + addr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]string
	json.NewDecoder(hresp.Body).Decode(&health)
	hresp.Body.Close()
	if hresp.StatusCode != 200 || health["status"] != "SERVING" || health["version"] != v {
		t.Errorf("GET /v1/health: %d %v", hresp.StatusCode, health)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(stderr.String(), "msg=stopped") {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	// The server is gone and the data directory is free again.
	cctx, ccancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer ccancel()
	if _, err := cli.ListCollections(cctx, &pb.ListCollectionsRequest{}); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("after stop: %v", err)
	}
	if _, stderr, code := runCLI(t, "", "--data", filepath.Join(dir, "data"), "collection", "describe", "c"); code != 0 {
		t.Errorf("embedded after serve: %s", stderr)
	}
}

func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"serve", "--addr", "x:1"}, "--addr is for clients"},
		{[]string{"serve", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"serve", "--max-recv-mb", "0"}, "--max-recv-mb"},
		{[]string{"serve", "--recv-budget-mb", "10"}, "--recv-budget-mb must be 0 or between --max-recv-mb (64)"},
		{[]string{"serve", "--memory-limit-mb", "-2"}, "--memory-limit-mb"},
		{[]string{"serve", "--token", "a", "--token-file", "f"}, "not both"},
	} {
		_, stderr, code := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: %d %q", tc.args, code, stderr)
		}
	}
}
