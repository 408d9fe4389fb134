// Command recvmem measures a server's peak memory under concurrent large
// UpsertBatch requests (issue 14, case 11). It is a measurement tool, not a
// test: run it against a freshly started server, whose peak RSS (VmHWM) it
// reads from /proc/PID/status before and after.
//
//	wpcdb serve --data /tmp/d --listen 127.0.0.1:7399 & PID=$!
//	go run ./scripts/recvmem --addr 127.0.0.1:7399 --pid $PID --n 8 --mb 60
//
// Every request must succeed or end with RESOURCE_EXHAUSTED or
// DEADLINE_EXCEEDED; anything else makes it exit 1.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7399", "server address")
	pid := flag.Int("pid", 0, "server process id (its VmHWM is read from /proc)")
	n := flag.Int("n", 1, "concurrent requests")
	mb := flag.Int("mb", 60, "size of each request, in MB of point coordinates")
	timeout := flag.Duration("timeout", 60*time.Second, "each request's deadline")
	flag.BoolVar(&useHTTP, "http", false, "send each request as REST (POST /v1/collections/recvmem/upsert, protojson) instead of gRPC; a 64 MiB body holds about 20 MB of floats")
	flag.Parse()
	if err := run(*addr, *pid, *n, *mb, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "recvmem:", err)
		os.Exit(1)
	}
}

const dim, pointsPerItem = 64, 1024

var useHTTP bool

// upsertHTTP sends req as REST and returns its error as a status.
func upsertHTTP(ctx context.Context, addr string, body []byte) error {
	hreq, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/collections/recvmem/upsert", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return status.Error(codes.DeadlineExceeded, err.Error())
		}
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return status.Error(codes.ResourceExhausted, string(msg))
	case http.StatusGatewayTimeout:
		return status.Error(codes.DeadlineExceeded, string(msg))
	}
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
}

func run(addr string, pid, n, mb int, timeout time.Duration) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := pb.NewWPCDBServiceClient(conn)
	ctx := context.Background()
	_, err = cl.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "recvmem", Config: &pb.CollectionConfig{Dim: dim, MaxPoints: pointsPerItem, Kernel: "linear"}})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return err
	}
	// One request per client, built before the clock starts; each is
	// mb MB of coordinates in items of 1024 points × 64 dims (256 KiB).
	items := mb << 20 / (dim * pointsPerItem * 4)
	reqs := make([]*pb.UpsertBatchRequest, n)
	for c := range reqs {
		r := rand.New(rand.NewPCG(uint64(c), 1))
		req := &pb.UpsertBatchRequest{Collection: "recvmem"}
		for i := range items {
			pts := make([]float32, dim*pointsPerItem)
			for j := range pts {
				pts[j] = r.Float32()
			}
			req.Items = append(req.Items, &pb.Item{Id: fmt.Sprintf("c%d-%d", c, i), Cloud: &pb.Cloud{Dim: dim, Points: pts}})
		}
		reqs[c] = req
	}
	var bodies [][]byte
	if useHTTP {
		for _, req := range reqs {
			b, err := protojson.Marshal(req)
			if err != nil {
				return err
			}
			bodies = append(bodies, b)
		}
		fmt.Printf("REST bodies of %.1f MB\n", float64(len(bodies[0]))/1e6)
	}
	before := vmHWM(pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	took := make([]time.Duration, n)
	for c := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			t := time.Now()
			if useHTTP {
				errs[c] = upsertHTTP(cctx, addr, bodies[c])
			} else {
				_, errs[c] = cl.UpsertBatch(cctx, reqs[c])
			}
			took[c] = time.Since(t)
		}()
	}
	wg.Wait()
	after := vmHWM(pid)
	bad := 0
	codesSeen := map[codes.Code]int{}
	for c, err := range errs {
		code := status.Code(err)
		codesSeen[code]++
		switch code {
		case codes.OK, codes.ResourceExhausted, codes.DeadlineExceeded:
		default:
			bad++
			fmt.Fprintf(os.Stderr, "request %d: %v\n", c, err)
		}
		if err != nil {
			fmt.Printf("request %d: %s after %.2f s: %s\n", c, code, took[c].Seconds(), cut(status.Convert(err).Message()))
		}
	}
	fmt.Printf("n=%d requests of %d items (%.1f MB of floats): %v in %.2f s; server VmHWM %s -> %s\n",
		n, items, float64(items*dim*pointsPerItem*4)/1e6, codesSeen, time.Since(start).Seconds(), before, after)
	if bad > 0 {
		return fmt.Errorf("%d requests ended with an unexpected code", bad)
	}
	return nil
}

func cut(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// vmHWM is the process's peak resident set, as /proc reports it.
func vmHWM(pid int) string {
	if pid == 0 {
		return "?"
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
