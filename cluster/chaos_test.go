package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/cluster"
	"github.com/wpcdb/wpcdb/internal/etcdtest"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// TestReplicatedChaos: two writers upsert batches through random live
// nodes (a batch whose call fails is sent again elsewhere until it is
// acknowledged) while a seeded schedule crashes a random node and
// restarts it, four times. Then every replica has caught up, every
// replica of a shard holds as many items, and the cluster answers as one
// node holding every acknowledged item (GetMany, searches by ids and
// float64 scores).
func TestReplicatedChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and four servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const chaosSeed = 1919
	t.Logf("seed %d", chaosSeed)
	rng := wpctest.NewRand(chaosSeed)
	ep := etcdtest.Start(t)
	nodes := []*rnode{startRNode(t, ep, "n1", 0, 0), startRNode(t, ep, "n2", 0, 0), startRNode(t, ep, "n3", 0, 0)}
	one := startNode(t, "", "", 0)
	for _, n := range nodes {
		waitView(t, n.m.Client, "three nodes", func(v *cluster.View) bool { return len(v.Nodes()) == 3 })
	}
	const dim = 5
	cfg := pbconv.ConfigToPB(wpcdb.CollectionConfig{Dim: dim}.WithDefaults())
	if _, err := nodes[1].m.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "x", Config: cfg}, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := one.cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "x", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	const batches, per = 48, 5
	items := make([]*pb.Item, batches*per)
	for i := range items {
		items[i] = &pb.Item{Id: fmt.Sprintf("x-%03d", i), Cloud: pbCloud(wpctest.RandomCloud(rng, 1+rng.IntN(5), dim, wpctest.Shape{})),
			Attrs: map[string]*structpb.Value{"g": structpb.NewNumberValue(float64(i % 3))}}
	}
	upsert(t, ctx, one.cli, &pb.UpsertRequest{Collection: "x", Items: items})

	// The nodes' clients change at a restart: writers take them under mu,
	// from the live nodes, in an order drawn from their own seeded source.
	var (
		mu     sync.Mutex
		acked  int
		ackedC = make(chan struct{}, batches)
	)
	live := func(pick int) pb.WPCDBServiceClient {
		mu.Lock()
		defer mu.Unlock()
		for j := range nodes {
			if n := nodes[(pick+j)%len(nodes)]; n.up {
				return n.cli
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := wpctest.NewRand(chaosSeed + uint64(w) + 1)
			for b := w; b < batches; b += 2 {
				batch := items[b*per : (b+1)*per]
				for try := 0; ; try++ {
					if ctx.Err() != nil {
						errs <- fmt.Errorf("batch %d not acknowledged after %d tries", b, try)
						return
					}
					cli := live(wr.IntN(3))
					if cli == nil {
						continue
					}
					cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
					resp, err := cli.UpsertBatch(cctx, &pb.UpsertBatchRequest{Collection: "x", Items: batch})
					ccancel()
					if err == nil && resp.Written == per {
						break
					}
				}
				mu.Lock()
				acked++
				mu.Unlock()
				ackedC <- struct{}{}
			}
		}()
	}
	waitAcked := func(n int) {
		for {
			mu.Lock()
			a := acked
			mu.Unlock()
			if a >= n {
				return
			}
			select {
			case <-ackedC:
			case <-ctx.Done():
				t.Fatalf("%d batches acknowledged, waiting for %d: %v", a, n, ctx.Err())
			}
		}
	}
	for round := range 4 {
		waitAcked(5 + round*10)
		v := nodes[rng.IntN(3)]
		t.Logf("round %d: %s crashes", round, v.id)
		mu.Lock()
		v.up = false // writers stop choosing it before it goes
		mu.Unlock()
		v.crash()
		waitAcked(10 + round*10)
		mu.Lock()
		v.start()
		mu.Unlock()
		t.Logf("round %d: %s restarted", round, v.id)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	m, _ := nodes[0].m.View().Collection("x")
	waitCaughtUp(t, m, nodes)
	for k := range m.Shards {
		name := cluster.ShardName("x", k)
		var counts []uint64
		for _, n := range nodes {
			c, err := n.cli.Count(ctx, &pb.CountRequest{Collection: name})
			if err != nil {
				t.Fatal(err)
			}
			counts = append(counts, c.Count)
		}
		if counts[0] != counts[1] || counts[1] != counts[2] {
			t.Fatalf("%s: replicas hold %v items", name, counts)
		}
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.Id
	}
	want, err := one.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "x", Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		got, err := n.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "x", Ids: ids})
		if err != nil || !proto.Equal(got, want) || len(want.Missing) != 0 {
			t.Fatalf("GetMany through %s: %d items, missing %v (%v)", n.id, len(got.GetItems()), got.GetMissing(), err)
		}
		q := pbCloud(wpctest.RandomCloud(rng, 3, dim, wpctest.Shape{}))
		for _, req := range []*pb.SearchRequest{{K: 10}, {K: 5, Filter: "g = 2", Consistency: pb.Consistency_CONSISTENCY_STRONG}} {
			req.Collection, req.Query = "x", q
			w, err := one.cli.Search(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			g, err := n.cli.Search(ctx, req)
			if err != nil || !equalHits(g.Hits, w.Hits) {
				t.Fatalf("search through %s: %v %v, want %v", n.id, g.GetHits(), err, w.Hits)
			}
		}
	}
}
