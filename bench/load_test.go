package bench_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/server"
)

func TestLoad(t *testing.T) {
	db, err := wpcdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, err := server.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop(context.Background())
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	shape := bench.Synth{Dim: 16, MinPoints: 2, MaxPoints: 8}
	cfg := wpcdb.CollectionConfig{Dim: 16}
	cfg.Features.Dim = 64
	rep, err := bench.Load(context.Background(), bench.LoadConfig{
		Conn: conn, Collection: "load", Config: cfg, Synth: bench.NewSynth(shape, 1), N: 300,
		Clients: 3, Duration: 300 * time.Millisecond, WriteFraction: 0.2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Search.Requests == 0 || rep.Upsert.Requests == 0 || rep.QPS <= 0 || rep.P99Ms < rep.P50Ms {
		t.Fatalf("%+v", rep)
	}
	c, _ := db.Collection("load")
	// Writes cut off by the end of the run are not counted but may land.
	if n := c.Count(); n < 300+10*rep.Upsert.Requests || n > 300+10*(rep.Upsert.Requests+3) {
		t.Errorf("count %d after %d write batches", c.Count(), rep.Upsert.Requests)
	}
	t.Log(rep)
}
