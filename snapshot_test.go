package wpcdb_test

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/storage"
)

// TestSnapshotRestoreRoundTrip: a snapshot made by CreateSnapshot is
// listed, restores into a new folder that opens with the saved first-stage
// index (no rebuild: any warning fails the test) and answers every search
// as the database did when the snapshot was taken; restore never writes
// over a database or a non-empty folder.
func TestSnapshotRestoreRoundTrip(t *testing.T) {
	const seed = 1818
	t.Logf("seed %d", seed)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	opts := &wpcdb.Options{Logger: slog.New(failOnWarn{t})}
	db, err := wpcdb.Open(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, Index: collconfig.Index{Kind: collconfig.IndexHNSW}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Upsert(ctx, randomItems(seed, 300, 5, 8, "a")); err != nil {
		t.Fatal(err)
	}
	queries := randomItems(seed+1, 5, 5, 8, "q")
	want := searchAll(t, db, queries) // loads the index
	if err := c.WaitIndex(ctx); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(data, wpcdb.SnapshotsDir)
	info, err := db.CreateSnapshot(root, "s1")
	if err != nil || info.Name != "s1" || info.Dir != filepath.Join(root, "s1") || info.Bytes == 0 {
		t.Fatalf("create: %+v %v", info, err)
	}
	if _, err := db.CreateSnapshot(root, "s1"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("a taken name: %v", err)
	}
	for bad, want := range map[string]string{"": "required", "..": "not a path", "../out": "not a path", "/tmp/x": "not a path", "a/b": "not a path", strings.Repeat("n", 300): "(300 bytes): at most 255 bytes"} {
		if _, err := db.CreateSnapshot(root, bad); !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("name %.40q: %v, want ErrInvalidArgument saying %q", bad, err, want)
		}
	}
	// Writes after the snapshot are not in it.
	if err := c.Upsert(ctx, randomItems(seed+2, 20, 5, 8, "b")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(root, "not-a-snapshot"), 0o755)
	list, err := wpcdb.ListSnapshots(root)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], info) {
		t.Fatalf("list: %+v %v, want %+v", list, err, info)
	}

	// Never from a database in use (it changes under the copy).
	if err := wpcdb.Restore(data, filepath.Join(dir, "from-live"), nil); !errors.Is(err, wpcdb.ErrLocked) {
		t.Errorf("restore from the open database: %v", err)
	}
	// Never over a database, live or not, nor into a non-empty folder.
	if err := wpcdb.Restore(info.Dir, data, nil); !errors.Is(err, wpcdb.ErrRestoreTarget) {
		t.Errorf("restore over the live database: %v", err)
	}
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "notes.txt"), []byte("mine"), 0o644)
	if err := wpcdb.Restore(info.Dir, full, nil); !errors.Is(err, wpcdb.ErrRestoreTarget) {
		t.Errorf("restore into a folder with a file: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(full, "notes.txt")); err != nil || string(b) != "mine" {
		t.Errorf("the refused folder changed: %q %v", b, err)
	}
	if err := wpcdb.Restore(full, filepath.Join(dir, "x"), nil); !errors.Is(err, storage.ErrNotDatabase) {
		t.Errorf("restore from a folder that is no snapshot: %v", err)
	}

	for _, target := range []string{filepath.Join(dir, "new", "restored"), filepath.Join(dir, "empty")} {
		os.Mkdir(filepath.Join(dir, "empty"), 0o755)
		if err := wpcdb.Restore(info.Dir, target, opts); err != nil {
			t.Fatal(err)
		}
		rdb, err := wpcdb.Open(target, opts)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rdb.Collection("c")
		if err != nil {
			t.Fatal(err)
		}
		// Before the first search the status comes from the saved index.
		if st := rc.IndexStatus(); st.Loaded || st.Kind != "hnsw" || st.InGraph != 300 || rc.Count() != 300 {
			t.Errorf("%s: restored index status %+v, count %d", target, st, rc.Count())
		}
		if got := searchAll(t, rdb, queries); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: restored searches differ:\n%v\nwant\n%v", target, got, want)
		}
		if err := rdb.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreRefusesDatabaseInUse: a database another process has open
// changes under a copy, so Restore refuses it, naming the process.
func TestRestoreRefusesDatabaseInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	db, err := wpcdb.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 16, Encoding: wpcdb.EncodingF16}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$") // killChild: upserts until killed
	cmd.Env = append(os.Environ(), "WPCDB_KILL_CHILD_DIR="+data)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "acked ") {
		t.Fatalf("child: %q %v", line, err)
	}
	err = wpcdb.Restore(data, filepath.Join(dir, "copy"), nil)
	if !errors.Is(err, wpcdb.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("restore from a database another process has open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "copy")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused restore left %s: %v", filepath.Join(dir, "copy"), err)
	}
}
