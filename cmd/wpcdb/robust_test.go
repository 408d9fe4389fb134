package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostileInputsCLI runs what a careless or hostile user types, embedded
// and against a server: each gets a clear error naming the problem, and
// nothing is written (the collection keeps its one item).
func TestHostileInputsCLI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	query := write("q.json", `{"points":[[1,2]]}`)
	big := write("big.json", `{"points":[`+strings.Repeat("[1,2],", 8)+`[1,2]]}`)
	longName := strings.Repeat("k", 1<<20)
	points := filepath.Join(dir, "P.npy")
	writeNPYFloats(t, points, []int{1, 1, 2}, []float32{1, 2})
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"id not UTF-8", []string{"ingest", "c", "--input", write("a.jsonl", "{\"id\":\"a\xffb\",\"points\":[[1,2]]}\n")}, "id: not valid UTF-8"},
		{"id with newline", []string{"ingest", "c", "--input", write("b.jsonl", `{"id":"a\nb","points":[[1,2]]}`+"\n")}, "control character U+000A"},
		{"id of 1 MB is not echoed", []string{"ingest", "c", "--input", write("c.jsonl", `{"id":"`+strings.Repeat("x", 1<<20)+`","points":[[1,2]]}`+"\n")}, "(1048576 bytes)"},
		{"attribute name of 1 MB is not echoed", []string{"ingest", "c", "--input", write("e.jsonl", `{"id":"x","points":[[1,2]],"attrs":{"`+longName+`":1}}`+"\n")}, "(1048576 bytes)"},
		{"attribute name of 1 MB with a bad value", []string{"ingest", "c", "--input", write("f.jsonl", `{"id":"x","points":[[1,2]],"attrs":{"`+longName+`":{}}}`+"\n")}, "(1048576 bytes)"},
		{"npy attrs not UTF-8", []string{"ingest", "c", "--points", points, "--attrs", write("g.jsonl", "{\"a\":\"x\xff\"}\n")}, "attrs: not valid UTF-8"},
		{"npy attrs name of 1 MB", []string{"ingest", "c", "--points", points, "--attrs", write("h.jsonl", `{"`+longName+`":{}}`+"\n")}, "(1048576 bytes)"},
		{"npy ID line of 2 MB", []string{"ingest", "c", "--points", points, "--ids", write("i.txt", strings.Repeat("i", 2<<20)+"\n")}, "line 1: longer than 1048576 bytes"},
		{"npy more IDs than rows", []string{"ingest", "c", "--points", points, "--ids", write("j.txt", "a\nb\n")}, "more IDs than the 1 rows"},
		{"trailing garbage", []string{"ingest", "c", "--input", write("d.jsonl", `{"id":"x","points":[[1,2]]}}`+"\n")}, "data after the cloud object"},
		{"query over max points", []string{"search", "c", "--query", big, "--k", "1"}, "query: 9 points exceeds the collection's maximum of 8"},
		{"kernel with 17 terms", []string{"collection", "create", "k", "--dim", "2", "--kernel", strings.Repeat("linear+", 16) + "linear"}, "more than 16 terms"},
		{"tiny gaussian", []string{"collection", "create", "k", "--dim", "2", "--kernel", "gaussian(1e-30)"}, "σ must be in [0.001, 1e+06]"},
		{"tiny alpha", []string{"collection", "create", "k", "--dim", "2", "--kernel", "1e-300*linear", "--score", "cosine"}, "α must be in [1e-06, 1e+06]"},
		{"tiny imq", []string{"collection", "create", "k", "--dim", "2", "--kernel", "imq(1e-30)", "--score", "cosine"}, "c must be in [0.001, 1e+06]"},
		{"100 KB spec not echoed", []string{"collection", "create", "k", "--dim", "2", "--kernel", strings.Repeat("x", 100<<10)}, "(102400 bytes)"},
		{"unknown collection of 1 MB is not echoed", []string{"get", strings.Repeat("n", 1<<20), "x"}, "(1048576 bytes)"},
		{"input path of 100 KB is not echoed", []string{"ingest", "c", "--input", filepath.Join(dir, strings.Repeat("p", 100<<10)+".jsonl")}, "ppp.jsonl ("},
		{"npy path of 100 KB is not echoed", []string{"ingest", "c", "--points", filepath.Join(dir, strings.Repeat("q", 100<<10)+".npy")}, "qqq.npy ("},
		{"hnsw-m 0", []string{"collection", "create", "k", "--dim", "2", "--hnsw-m", "0"}, "--hnsw-m must be at least 2, got 0"},
		{"ef-construction 0", []string{"collection", "create", "k", "--dim", "2", "--ef-construction", "0"}, "--ef-construction must be at least 1, got 0"},
	}
	seed := write("seed.jsonl", `{"id":"seed","points":[[1,2]]}`+"\n")
	run1 := func(mode string, prefix []string) {
		if _, stderr, code := runCLI(t, "", append(prefix, "collection", "create", "c", "--dim", "2", "--max-points", "8")...); code != 0 {
			t.Fatal(stderr)
		}
		if _, stderr, code := runCLI(t, "", append(prefix, "ingest", "c", "--input", seed)...); code != 0 {
			t.Fatal(stderr)
		}
		for _, tc := range cases {
			_, stderr, code := runCLI(t, "", append(prefix, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s: %s: exit %d, stderr %.300q; want it to say %q", mode, tc.name, code, stderr, tc.want)
			}
			if len(stderr) > 4096 {
				t.Errorf("%s: %s: %d-byte error message", mode, tc.name, len(stderr))
			}
		}
		stdout, _, _ := runCLI(t, "", append(prefix, "--json", "collection", "list")...)
		if !strings.Contains(stdout, `"count":1`) || strings.Contains(stdout, `"k"`) {
			t.Errorf("%s: something was written: %s", mode, stdout)
		}
		if _, stderr, code := runCLI(t, "", append(prefix, "search", "c", "--query", query, "--k", "1")...); code != 0 {
			t.Errorf("%s: a good search after the bad inputs: %s", mode, stderr)
		}
	}
	run1("embedded", []string{"--data", filepath.Join(dir, "data")})
	run1("remote", []string{"--addr", startServer(t, nil)})
}

// TestCorruptBlockCLI: one flipped byte in a table of a closed database
// (a quarter, half and three quarters in) makes an exact search that reads
// it fail with a corruption error, embedded (exit 1, "corrupt data") and
// against a server (DataLoss), or leaves its answer unchanged; never a
// panic, and the server keeps serving. Pebble's default reaction to a bad
// block checksum is a Fatalf that kills the process.
func TestCorruptBlockCLI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	in := filepath.Join(dir, "items.jsonl")
	writeJSONL(t, in, 1415, 300, 6, 8)
	query := filepath.Join(dir, "q.json")
	if err := os.WriteFile(query, []byte(`{"points":[[1,2,3,4,5,6,7,8],[0,1,0,1,0,1,0,1]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, "", "--data", src, "collection", "create", "c", "--dim", "8"); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := runCLI(t, "", "--data", src, "ingest", "c", "--input", in); code != 0 {
		t.Fatal(stderr)
	}
	search := []string{"search", "c", "--query", query, "--k", "10", "--exact"}
	want, stderr, code := runCLI(t, "", append([]string{"--data", src}, search...)...)
	if code != 0 {
		t.Fatal(stderr)
	}
	entries, _ := os.ReadDir(src)
	var table string
	var size int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".sst") && info.Size() > size {
			table, size = e.Name(), info.Size()
		}
	}
	if size < 16<<10 {
		t.Fatalf("largest table %q of %d bytes: too small to hold several blocks", table, size)
	}
	errorsSeen := 0
	for _, frac := range []int64{1, 2, 3} {
		pos := size * frac / 4
		dst := filepath.Join(dir, fmt.Sprintf("copy%d", frac))
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dst, table))
		b[pos] ^= 0x5a
		os.WriteFile(filepath.Join(dst, table), b, 0o644)

		got, stderr, code := runCLI(t, "", append([]string{"--data", dst}, search...)...)
		switch {
		case code != 0 && strings.Contains(stderr, "corrupt data"):
			errorsSeen++
			if strings.Count(stderr, "\n") != 1 {
				t.Errorf("%s byte %d: a message of several lines: %q", table, pos, stderr)
			}
		case code != 0 || got != want:
			t.Errorf("%s byte %d: embedded: exit %d, %q; want a corruption error or the undamaged answer", table, pos, code, stderr)
		}
		addr := serveDir(t, dst, nil)
		got, stderr, code = runCLI(t, "", append([]string{"--addr", addr}, search...)...)
		if code != 0 && !strings.Contains(stderr, "DataLoss") || code == 0 && got != want {
			t.Errorf("%s byte %d: remote: exit %d, %q; want DataLoss or the undamaged answer", table, pos, code, stderr)
		}
		if _, stderr, code := runCLI(t, "", "--addr", addr, "collection", "list"); code != 0 {
			t.Errorf("%s byte %d: the server does not answer after the search: %s", table, pos, stderr)
		}
	}
	t.Logf("%d of 3 flips in %s (%d bytes) reported as corruption, the others changed no answer", errorsSeen, table, size)
	if errorsSeen == 0 {
		t.Error("no flip was detected: the test damages nothing a search reads")
	}
}

// TestDataFolderSafety: --data at a folder that is not a database is
// refused and left as it was; a folder in use says so.
func TestDataFolderSafety(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"000123.log", "000007.sst", "thesis.tex"} {
		os.WriteFile(filepath.Join(dir, n), []byte("mine"), 0o644)
	}
	_, stderr, code := runCLI(t, "", "--data", dir, "collection", "list")
	if code == 0 || !strings.Contains(stderr, "not a wpcdb database") || !strings.Contains(stderr, "nothing was changed") {
		t.Errorf("foreign folder: %d %q", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("the folder now has %d entries", len(entries))
	}
	for _, n := range []string{"000123.log", "000007.sst", "thesis.tex"} {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != "mine" {
			t.Errorf("%s: %q %v", n, b, err)
		}
	}
}

func TestSecurityWarnings(t *testing.T) {
	for _, tc := range []struct {
		token, tls bool
		listen     string
		want       string // "" = no warning
	}{
		{false, false, "127.0.0.1:7070", ""},
		{true, false, "localhost:7070", ""},
		{false, false, "0.0.0.0:7070", "without a token"},
		{true, false, "0.0.0.0:7070", "token without TLS"},
		{true, false, "[::]:7070", "token without TLS"},
		{true, true, "0.0.0.0:7070", ""},
	} {
		got := strings.Join(securityWarnings(tc.token, tc.tls, tc.listen), "; ")
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("token %v tls %v %s: %q, want %q", tc.token, tc.tls, tc.listen, got, tc.want)
		}
	}
}

// TestDBLoggerWarns: the embedded database's messages reach stderr from
// warning level up, without timestamps (a nil logger dropped them, so a
// saved index rebuilt after damage went unsaid); serve's logger replaces it.
func TestDBLoggerWarns(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr}
	log := a.dbLogger()
	log.Info("loaded")
	log.Warn("saved first-stage index unusable; rebuilding it from the items", "collection", "c")
	log.Error("data corruption", "component", "pebble", "error", "a stack trace")
	got := stderr.String()
	if !strings.Contains(got, `level=WARN msg="saved first-stage index unusable; rebuilding it from the items" collection=c`) ||
		strings.Contains(got, "loaded") || strings.Contains(got, "time=") || strings.Contains(got, "pebble") {
		t.Fatalf("stderr %q: want the warning alone, without a time", got)
	}
	a.log = slog.New(slog.DiscardHandler)
	if a.dbLogger() != a.log {
		t.Fatal("serve's logger is not the database's")
	}
}

// TestCacheFlags: --cloud-cache-mb and --point-cache-mb reach
// wpcdb.Options as bytes, 0 as the default and a negative value as none.
func TestCacheFlags(t *testing.T) {
	for _, tc := range []struct{ mb, want int64 }{{0, 0}, {-1, -1}, {-7, -1}, {3, 3 << 20}, {1 << 50, 1 << 60}} {
		if got := cacheBytes(tc.mb); got != tc.want {
			t.Errorf("cacheBytes(%d) = %d, want %d", tc.mb, got, tc.want)
		}
	}
	dir := t.TempDir()
	if _, stderr, code := runCLI(t, "", "--data", dir, "--point-cache-mb", "-1", "--cloud-cache-mb", "1", "collection", "create", "c", "--dim", "4"); code != 0 {
		t.Fatalf("create with cache flags: %s", stderr)
	}
}
