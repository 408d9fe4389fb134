package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/server"
)

// TestSnapshotRestoreCLI: snapshot create and list, embedded and through a
// server; restore makes a new data folder that answers a search as the
// original did, and refuses a folder holding a database.
func TestSnapshotRestoreCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "items.jsonl")
	recs := writeJSONL(t, in, 5, 200, 4, 8)
	q := string(cloudjson.AppendJSON(nil, cloudjson.Record{Cloud: recs[3].Cloud}))
	cli := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	cli("", "--data", data, "collection", "create", "c", "--dim", "8", "--index", "hnsw")
	cli("", "--data", data, "ingest", "c", "--input", in)
	want := cli(q, "--data", data, "search", "c", "--query", "-", "-k", "5")
	if out := cli("", "--data", data, "snapshot", "create", "s1"); !strings.HasPrefix(out, "snapshot s1 written to "+filepath.Join(data, "snapshots", "s1")) {
		t.Fatalf("create: %q", out)
	}
	var list []wpcdb.SnapshotInfo
	if err := json.Unmarshal([]byte(cli("", "--data", data, "--json", "snapshot", "list")), &list); err != nil || len(list) != 1 || list[0].Name != "s1" {
		t.Fatalf("list: %v %v", list, err)
	}
	if _, errOut, code := runCLI(t, "", "--data", data, "snapshot", "create", "../x"); code != 1 || !strings.Contains(errOut, "not a path") {
		t.Errorf("a path as the name: %d %q", code, errOut)
	}
	// Restore: never over a database.
	if _, errOut, code := runCLI(t, "", "restore", list[0].Dir, "--data", data); code != 1 || !strings.Contains(errOut, "never over a database") {
		t.Errorf("restore over the database: %d %q", code, errOut)
	}
	if _, _, code := runCLI(t, "", "restore", list[0].Dir); code != 2 {
		t.Errorf("restore without --data: exit %d", code)
	}
	restored := filepath.Join(dir, "restored")
	if out := cli("", "restore", list[0].Dir, "--data", restored); out != "restored "+list[0].Dir+" into "+restored+"\n" {
		t.Errorf("restore: %q", out)
	}
	if got := cli(q, "--data", restored, "search", "c", "--query", "-", "-k", "5"); normalize(got) != normalize(want) {
		t.Errorf("restored search:\n%s\nwant\n%s", got, want)
	}

	// Through a server: the snapshot goes in its snapshot directory.
	root := filepath.Join(dir, "server-snapshots")
	addr := startServer(t, &server.Options{SnapshotRoot: root})
	cli("", "--addr", addr, "collection", "create", "c", "--dim", "8")
	if out := cli("", "--addr", addr, "snapshot", "create", "r1"); !strings.HasPrefix(out, "snapshot r1 written to "+filepath.Join(root, "r1")) {
		t.Errorf("remote create: %q", out)
	}
	if out := cli("", "--addr", addr, "snapshot", "list"); !strings.Contains(out, "r1") || !strings.HasPrefix(out, "NAME") {
		t.Errorf("remote list: %q", out)
	}
}
