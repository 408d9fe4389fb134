package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wpcdb/wpcdb/internal/etcdtest"
)

// TestClusterCLI runs two `wpcdb serve --cluster` nodes, creates a sharded
// collection with `collection create --cluster --shards`, reads it through
// either node, and prints `cluster status`.
func TestClusterCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two servers")
	}
	ep := etcdtest.Start(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := []string{freeAddr(t), freeAddr(t)}
	done := make(chan int, len(addrs))
	var stderr [2]lockedBuffer
	for i, addr := range addrs {
		id := []string{"n1", "n2"}[i]
		go func() {
			done <- run(ctx, []string{"serve", "--data", filepath.Join(dir, id), "--listen", addr, "--metrics-listen", "", "--cluster", ep, "--node-id", id, "--shard-timeout", "1m"}, strings.NewReader(""), &lockedBuffer{}, &stderr[i])
		}()
		waitServing(t, addr)
	}
	defer func() {
		cancel()
		for range addrs {
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("serve exited %d: %s %s", code, stderr[0].String(), stderr[1].String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop")
			}
		}
	}()
	if out, errOut, code := runCLI(t, "", "collection", "create", "c", "--dim", "4", "--kernel", "linear", "--cluster", ep, "--shards", "3"); code != 0 || !strings.Contains(out, "c") {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	// Node n2 learns of the collection through its watch.
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var code int
		if out, _, code = runCLI(t, "", "--addr", addrs[1], "collection", "list"); code == 0 && strings.Contains(out, "c ") || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(out, "c.s") || !strings.Contains(out, "c ") {
		t.Fatalf("list through n2: %s", out)
	}
	out, errOut, code := runCLI(t, "", "cluster", "status", "--cluster", ep)
	t.Logf("cluster status:\n%s", out)
	for _, want := range []string{"n1  ", "n2  ", addrs[0], addrs[1], "c           0", "c           2"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("cluster status lacks %q: %d %s %s", want, code, out, errOut)
		}
	}
	// Ingest through n2, count and search through n1.
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf(`{"id":"i%02d","points":[[%d,1,0,2]]}`, i, i))
	}
	items := filepath.Join(dir, "items.jsonl")
	if err := os.WriteFile(items, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, "", "--addr", addrs[1], "ingest", "c", "--input", items, "--batch", "7"); code != 0 || !strings.Contains(out, "ingested 20 items") {
		t.Fatalf("ingest: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, "", "--addr", addrs[0], "count", "c"); code != 0 || strings.TrimSpace(out) != "20" {
		t.Fatalf("count: %d %q %s", code, out, errOut)
	}
	q := filepath.Join(dir, "q.json")
	os.WriteFile(q, []byte(`{"points":[[1,0,0,0]]}`), 0o644)
	// Linear kernel: the score is the dot product, so i19 then i18.
	if out, errOut, code := runCLI(t, "", "--addr", addrs[0], "search", "c", "--query", q, "-k", "2"); code != 0 || !strings.Contains(out, "i19") || !strings.Contains(out, "i18") || strings.Contains(out, "i17") {
		t.Fatalf("search: %d %s %s", code, out, errOut)
	}
	// Replicated: 2 shards × 2 replicas (a Raft group each); the write
	// waits for the groups' first leaders (the router retries).
	if out, errOut, code := runCLI(t, "", "collection", "create", "r", "--dim", "4", "--kernel", "linear", "--cluster", ep, "--shards", "2", "--replicas", "2"); code != 0 || !strings.Contains(out, "r") {
		t.Fatalf("create --replicas 2: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "", "collection", "create", "r3", "--dim", "4", "--cluster", ep, "--replicas", "3"); code == 0 || !strings.Contains(errOut, "3 replicas need as many live nodes; the cluster has 2") {
		t.Errorf("--replicas 3 on 2 nodes: %d %s", code, errOut)
	}
	if out, errOut, code := runCLI(t, "", "--addr", addrs[0], "ingest", "r", "--input", items, "--batch", "7"); code != 0 || !strings.Contains(out, "ingested 20 items") {
		t.Fatalf("ingest into r: %d %s %s", code, out, errOut)
	}
	for _, addr := range addrs {
		for k := range 2 { // each node holds a copy of each shard (a follower's once it applied)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				out, errOut, code := runCLI(t, "", "--addr", addr, "count", fmt.Sprintf("r.s%d", k))
				if code == 0 && strings.TrimSpace(out) != "0" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("count r.s%d on %s: %d %q %s", k, addr, code, out, errOut)
				}
			}
		}
	}
	if out, errOut, code := runCLI(t, "", "--addr", addrs[1], "--consistency", "strong", "count", "r"); code != 0 || strings.TrimSpace(out) != "20" {
		t.Fatalf("strong count r: %d %q %s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, "", "--addr", addrs[0], "--consistency", "strong", "search", "r", "--query", q, "-k", "2"); code != 0 || !strings.Contains(out, "i19") || !strings.Contains(out, "i18") {
		t.Fatalf("strong search r: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "", "--addr", addrs[0], "--consistency", "eventual", "count", "r"); code != 2 || !strings.Contains(errOut, `--consistency: "eventual" is not a consistency`) {
		t.Errorf("--consistency eventual: %d %s", code, errOut)
	}
	if out, _, _ := runCLI(t, "", "cluster", "status", "--cluster", ep); !strings.Contains(out, "n1,n2") || !strings.Contains(out, "n2,n1") {
		t.Fatalf("cluster status after r: %s", out)
	}
	// Moves and replacements refused before anything changes (a move's
	// success is tested in cluster's TestMoveDuringIngest).
	if _, errOut, code := runCLI(t, "", "cluster", "move", "r", "0", "--from", "n1", "--to", "n2", "--cluster", ep); code == 0 || !strings.Contains(errOut, `node "n2" is already one of its replicas`) {
		t.Errorf("move to a replica: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "cluster", "move", "c", "0", "--from", "n1", "--to", "n2", "--cluster", ep); code == 0 || !strings.Contains(errOut, "has one replica") {
		t.Errorf("move of an unreplicated shard: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "cluster", "move", "r", "x", "--from", "n1", "--to", "n2", "--cluster", ep); code != 2 || !strings.Contains(errOut, "SHARD must be a shard number") {
		t.Errorf("move of shard x: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "cluster", "replace", "n1", "--cluster", ep); code == 0 || !strings.Contains(errOut, `node "n1" is live`) {
		t.Errorf("replace of a live node: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "collection", "create", "d", "--dim", "4", "--shards", "2"); code != 2 || !strings.Contains(errOut, "--shards and --replicas need --cluster") {
		t.Errorf("--shards without --cluster: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "serve", "--cluster", ep, "--node-id", "n3", "--shard-timeout", "-1s"); code != 2 || !strings.Contains(errOut, "--shard-timeout must not be negative") {
		t.Errorf("negative --shard-timeout: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "serve", "--cluster", ep, "--node-id", "n3", "--replicas", "0"); code != 2 || !strings.Contains(errOut, "--replicas must be between 1 and 7, got 0") {
		t.Errorf("--replicas 0: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "serve", "--cluster", ep); code != 2 || !strings.Contains(errOut, "--cluster and --node-id go together") {
		t.Errorf("--cluster without --node-id: %d %s", code, errOut)
	}
}
