package wpcdb_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wpcdb/wpcdb"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("WPCDB_KILL_CHILD_DIR"); dir != "" {
		killChild(dir)
		return
	}
	os.Exit(m.Run())
}

const killBatch = 25

func killBatchItems(b int) []wpcdb.Item {
	return randomItems(uint64(1000+b), killBatch, 8, 16, fmt.Sprintf("b%d-", b))
}

// killChild upserts batches forever, printing "acked B" after batch B is
// acknowledged, until it is killed.
func killChild(dir string) {
	first, _ := strconv.Atoi(os.Getenv("WPCDB_KILL_CHILD_FIRST"))
	bulk, _ := strconv.Atoi(os.Getenv("WPCDB_KILL_CHILD_BULK"))
	db, err := wpcdb.Open(dir, &wpcdb.Options{BulkWriteBytes: bulk})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	c, err := db.Collection("c")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	for b := first; ; b++ {
		if err := c.Upsert(ctx, killBatchItems(b)); err != nil {
			fmt.Fprintln(out, "error", err)
			out.Flush()
			os.Exit(3)
		}
		fmt.Fprintln(out, "acked", b)
		out.Flush()
	}
}

// TestSIGKILLDuringIngest kills an ingesting child process at random
// moments, over many rounds: after each kill the database reopens, every
// acknowledged batch is present and identical, and no batch is half there.
func TestSIGKILLDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const seed = 1127
	const rounds = 20
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	db, err := wpcdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 16, Encoding: wpcdb.EncodingF16}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	next := 0 // first batch the next child writes
	for round := 0; round < rounds; round++ {
		delay := time.Duration(10+rng.IntN(250)) * time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		// Odd rounds write every batch as ingested SSTables (bulk.go), even
		// ones through Pebble's log.
		bulk := writePaths[round%2].bytes
		cmd.Env = append(os.Environ(), "WPCDB_KILL_CHILD_DIR="+dir, "WPCDB_KILL_CHILD_FIRST="+strconv.Itoa(next),
			"WPCDB_KILL_CHILD_BULK="+strconv.Itoa(bulk))
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := -1
		done := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				if b, ok := strings.CutPrefix(line, "acked "); ok {
					acked, _ = strconv.Atoi(b)
				} else {
					t.Errorf("round %d: child: %s", round, line)
				}
			}
			close(done)
		}()
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()
		// Verify every batch the child may have touched.
		db, err := wpcdb.Open(dir, nil)
		if err != nil {
			t.Fatalf("seed %d round %d: reopen after SIGKILL: %v", seed, round, err)
		}
		c, err := db.Collection("c")
		if err != nil {
			t.Fatal(err)
		}
		lastPresent := next - 1
		for b := 0; b <= max(acked, next)+1; b++ {
			items := killBatchItems(b)
			present := 0
			for _, want := range items {
				got, err := c.Get(ctx, want.ID)
				if errors.Is(err, wpcdb.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				checkStored(t, wpcdb.EncodingF16, want, got)
				present++
			}
			if present != 0 && present != len(items) {
				t.Errorf("seed %d round %d: batch %d half written: %d of %d", seed, round, b, present, len(items))
			}
			if b <= acked && present != len(items) {
				t.Errorf("seed %d round %d: acknowledged batch %d lost", seed, round, b)
			}
			if present == len(items) {
				lastPresent = max(lastPresent, b)
			}
		}
		if c.Count() != (lastPresent+1)*killBatch {
			t.Errorf("seed %d round %d: count %d, want %d", seed, round, c.Count(), (lastPresent+1)*killBatch)
		}
		db.Close()
		// The reopen removed the temporary tables of an ingest the kill cut short.
		if left, _ := filepath.Glob(filepath.Join(dir, "wpcdb-ingest-*")); len(left) > 0 {
			t.Errorf("seed %d round %d: temporary tables left after a reopen: %v", seed, round, left)
		}
		t.Logf("round %d (bulk %d): killed after %v: %d batches acknowledged, %d present", round, bulk, delay, max(0, acked-next+1), lastPresent-next+1)
		next = lastPresent + 1
	}
}
