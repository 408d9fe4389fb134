package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/server"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// startServer serves a fresh database on a free loopback port, in process.
func startServer(t *testing.T, opts *server.Options) string {
	t.Helper()
	return serveDir(t, t.TempDir(), opts)
}

// serveDir serves the database in dir on a free loopback port, in process.
func serveDir(t *testing.T, dir string, opts *server.Options) string {
	t.Helper()
	db, err := wpcdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		db.Close()
	})
	return lis.Addr().String()
}

// Timings and disk sizes differ from run to run; everything else must not.
var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`in [0-9.]+ s \([0-9]+ items/s\)`), "in T s (R items/s)"},
	{regexp.MustCompile(`disk bytes(\s+)[0-9]+`), "disk bytes${1}B"},
	{regexp.MustCompile(`"(disk_bytes|seconds|items_per_s|first_stage_ms|rerank_ms|total_ms)":[0-9.e+-]+`), `"$1":0`},
	{regexp.MustCompile(`[0-9.]+ ms`), "T ms"},
	// A server keeps the index it loaded; each embedded command loads it anew.
	{regexp.MustCompile(`"loaded":(true|false)`), `"loaded":_`},
}

func normalize(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	return s
}

// TestClientModeMatchesEmbedded runs every data command embedded (--data)
// and against a server (--addr) holding its own database, and compares
// the output.
func TestClientModeMatchesEmbedded(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := startServer(t, &server.Options{Token: "tok"})
	remote := []string{"--addr", addr, "--token", "tok"}
	both := func(stdin string, args ...string) string {
		t.Helper()
		eo, ee, ec := runCLI(t, stdin, append([]string{"--data", data}, args...)...)
		ro, re, rc := runCLI(t, stdin, append(append([]string{}, remote...), args...)...)
		if ec != 0 {
			t.Fatalf("%v embedded: exit %d: %s", args, ec, ee)
		}
		if rc != 0 || normalize(eo) != normalize(ro) || normalize(ee) != normalize(re) {
			t.Fatalf("%v: client mode differs from embedded\nembedded: %d %q %q\nclient:   %d %q %q", args, ec, eo, ee, rc, ro, re)
		}
		return eo
	}
	in := filepath.Join(dir, "items.jsonl")
	recs := writeJSONL(t, in, 21, 400, 5, 8)
	q := string(cloudjson.AppendJSON(nil, cloudjson.Record{Cloud: recs[5].Cloud}))

	both("", "collection", "create", "c", "--dim", "8", "--score", "mmd", "--max-points", "5")
	both("", "--json", "collection", "create", "d", "--dim", "8", "--kernel", "maxsim", "--encoding", "f16", "--rff-dim", "64", "--rff-seed", "7")
	if out := both("", "ingest", "c", "--input", in, "--batch", "64"); !strings.HasPrefix(out, "ingested 400 items") {
		t.Fatalf("ingest: %q", out)
	}
	both("", "--json", "ingest", "d", "--input", in)
	for _, args := range [][]string{
		{"get", "c", "item-7"},
		{"--json", "get", "d", "item-7"}, // f16: rounded the same way
		{"search", "c", "--query", "-", "-k", "5"},
		{"search", "c", "--query", "-", "-k", "7", "--exact", "--explain"},
		{"--json", "search", "c", "--query", "-", "-k", "5", "--candidates", "50"},
		{"--json", "search", "d", "--query", "-", "-k", "3"},
		{"rerank", "c", "--query", "-", "item-9", "item-5", "item-300"},
		{"rerank", "c", "--query", "-", "item-9", "ghost", "item-5"},
		{"--json", "rerank", "c", "--query", "-", "ghost", "item-5"},
		{"search", "c", "--query", "-", "-k", "3", "--offset", "2", "--with-attrs", "--filter", `color = "red"`},
		{"--json", "search", "c", "--query", "-", "--with-attrs"},
		{"get", "c", "item-9", "item-5"},
		{"count", "c", "--filter", `color = "red" AND n < 100`},
		{"--json", "count", "c"},
		{"scroll", "c", "--max", "30", "--page-size", "7", "--filter", `n >= 200`},
		{"scroll", "d", "--with-clouds", "--cursor", "item-390"},
		{"update-attrs", "c", "item-9", "--set", `{"color": "green", "new": true}`, "--unset", "n"},
		{"count", "c", "--filter", `color = "green"`},
		{"--json", "rerank", "d", "--query", "-", "item-9", "item-5"},
		{"delete", "c", "item-7", "item-8", "nope"},
		{"--json", "delete", "d", "item-1"},
		{"collection", "list"},
		{"--json", "collection", "list"},
		{"collection", "describe", "c"},
		{"--json", "collection", "describe", "d"},
		{"collection", "calibrate", "c"},
		{"--json", "collection", "calibrate", "d"},
		{"collection", "drop", "d"},
		{"--json", "collection", "list"},
	} {
		both(q, args...)
	}

	// Ingest semantics over the stream: skipping prints the same lines;
	// a refused batch stops with the same count, and writes nothing of it.
	bad := filepath.Join(dir, "bad.jsonl")
	good := func(id string) string { return `{"id":"` + id + `","points":[[1,2,3,4,5,6,7,8]]}` }
	zero := `{"id":"z","points":[[0,0,0,0,0,0,0,0]]}`
	// (No undecodable line here: on this branch the JSONL reader and the
	// committer both write to stderr, a race main fixes.)
	os.WriteFile(bad, []byte(strings.Join([]string{good("g1"), zero, good("g2"), good("g3")}, "\n")+"\n"), 0o644)
	both("", "ingest", "c", "--input", bad, "--batch", "2", "--skip-invalid")
	os.WriteFile(bad, []byte(strings.Join([]string{good("h1"), good("h2"), good("h3"), zero, good("h4")}, "\n")+"\n"), 0o644)
	_, ee, ec := runCLI(t, "", "--data", data, "ingest", "c", "--input", bad, "--batch", "2")
	ro, re, rc := runCLI(t, "", append(remote, "ingest", "c", "--input", bad, "--batch", "2")...)
	want := `wpcdb: line 4 (id "z"): InvalidArgument: points[0]: zero vector cannot be normalized (point normalization is on); batch refused, ingest stopped: 2 items committed before it` + "\n"
	if ec != 1 || rc != 1 || ro != "" || re != want || strings.Replace(re, "InvalidArgument: ", "", 1) != ee {
		t.Errorf("refused batch:\nembedded %d %q\nclient   %d %q", ec, ee, rc, re)
	}
	both("", "--json", "collection", "describe", "c") // same count: h1, h2 only

	// NumPy input and an imported feature sample go over the wire too.
	const n, m, d = 3, 2, 8
	var pts []byte
	for i := 0; i < n*m*d; i++ {
		pts = binary.LittleEndian.AppendUint32(pts, math.Float32bits(float32(i%7)+0.5))
	}
	p := filepath.Join(dir, "P.npy")
	writeNPY(t, p, "<f4", []int{n, m, d}, pts)
	both("", "ingest", "c", "--points", p)
	both("", "get", "c", "2")
	k, _ := wpcsim.ParseKernel("linear+gaussian(0.5)")
	fm, err := wpcsim.NewFeatureMap(wpcsim.Config{Kernel: k}, 8, wpcsim.FeatureOptions{D: 48, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	sampleDir := filepath.Join(dir, "sample")
	os.MkdirAll(sampleDir, 0o755)
	if err := wpcsim.SaveFeatureSample(sampleDir, fm.Sample()); err != nil {
		t.Fatal(err)
	}
	both("", "--json", "collection", "create", "s", "--dim", "8", "--kernel", "linear+gaussian(0.5)", "--rff-import", sampleDir)
}

// TestClientErrors: errors print the gRPC code and message and exit 1.
func TestClientErrors(t *testing.T) {
	addr := startServer(t, &server.Options{Token: "tok"})
	runCLI(t, "", "--addr", addr, "--token", "tok", "collection", "create", "c", "--dim", "2")
	q := `{"points":[[1,2]]}`
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--token", "tok", "collection", "describe", "nope"}, 1, `wpcdb: NotFound: storage: collection not found: "nope"`},
		{[]string{"--token", "tok", "collection", "create", "c", "--dim", "2"}, 1, "wpcdb: AlreadyExists: storage: collection already exists"},
		{[]string{"--token", "tok", "collection", "create", "e", "--dim", "0"}, 1, "wpcdb: InvalidArgument: collection \"e\": invalid collection config: dim must be positive, got 0"},
		{[]string{"--token", "tok", "search", "c", "--query", "-", "-k", "-1"}, 1, "wpcdb: InvalidArgument: query: invalid request: k must be between 1 and 10000, got -1"},
		{[]string{"--token", "tok", "search", "c", "--query", "-", "-k", "10001"}, 1, "got 10001"},
		{[]string{"--token", "tok", "get", "c", "ghost"}, 1, "wpcdb: NotFound: storage: item not found"},
		{[]string{"--token", "tok", "update-attrs", "c", "ghost", "--unset", "a"}, 1, `wpcdb: NotFound: storage: item not found: "ghost"`},
		{[]string{"--token", "tok", "count", "c", "--filter", "a ="}, 1, "wpcdb: InvalidArgument: "},
		{[]string{"collection", "list"}, 1, "wpcdb: Unauthenticated: server: missing or invalid bearer token"},
		{[]string{"--token", "nope", "collection", "list"}, 1, "wpcdb: Unauthenticated: "},
		{[]string{"--token", "tok", "--tls-ca", "/nonexistent", "collection", "list"}, 1, "/nonexistent"},
	} {
		stdout, stderr, code := runCLI(t, q, append([]string{"--addr", addr}, tc.args...)...)
		if code != tc.code || stdout != "" || !strings.HasPrefix(stderr, tc.stderr) && !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: %d %q %q", tc.args, code, stdout, stderr)
		}
	}
	// No server there.
	_, stderr, code := runCLI(t, "", "--addr", freeAddr(t), "collection", "list")
	if code != 1 || !strings.HasPrefix(stderr, "wpcdb: Unavailable: ") {
		t.Errorf("no server: %d %q", code, stderr)
	}
	if _, stderr, code := runCLI(t, "", "--tls-ca", "ca.pem", "collection", "list"); code != 2 || !strings.Contains(stderr, "--tls-ca go with --addr") {
		t.Errorf("--tls-ca without --addr: %d %q", code, stderr)
	}
}

// TestClientTLS serves TLS with a self-signed certificate and connects
// with it as --tls-ca; a plaintext client is refused.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, certPEM, 0o600)
	// With HTTP the HTTP server terminates TLS and hands gRPC requests,
	// streams included, to the gRPC server.
	for _, withHTTP := range []bool{false, true} {
		addr := startServer(t, &server.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, HTTP: withHTTP})
		if stdout, stderr, code := runCLI(t, "", "--addr", addr, "--tls-ca", ca, "collection", "create", "c", "--dim", "2"); code != 0 || !strings.Contains(stdout, "name") {
			t.Fatalf("http %v: TLS client: %d %q", withHTTP, code, stderr)
		}
		if stdout, stderr, code := runCLI(t, `{"id": "a", "points": [[1, 2]]}`+"\n", "--addr", addr, "--tls-ca", ca, "ingest", "c", "--input", "-"); code != 0 || !strings.HasPrefix(stdout, "ingested 1 items") {
			t.Fatalf("http %v: TLS ingest (a stream): %d %q %q", withHTTP, code, stdout, stderr)
		}
		if _, stderr, code := runCLI(t, "", "--addr", addr, "collection", "list"); code != 1 || !strings.HasPrefix(stderr, "wpcdb: Unavailable: ") || !strings.Contains(stderr, "pass --tls-ca") {
			t.Errorf("http %v: plaintext client against TLS: %d %q", withHTTP, code, stderr)
		}
		// --tls alone verifies against the system's roots, which do not
		// hold this self-signed certificate.
		if _, stderr, code := runCLI(t, "", "--addr", addr, "--tls", "collection", "list"); code != 1 || !strings.Contains(stderr, "certificate signed by unknown authority") {
			t.Errorf("http %v: --tls with the system roots against a self-signed server: %d %q", withHTTP, code, stderr)
		}
		if withHTTP {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(certPEM)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
			resp, err := hc.Post("https://"+addr+"/v1/collections/c/count", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got struct{ Count string }
			if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || got.Count != "1" {
				t.Errorf("HTTPS count: %d %s", resp.StatusCode, body)
			}
		}
	}
	plain := startServer(t, nil)
	if _, stderr, code := runCLI(t, "", "--addr", plain, "--tls-ca", ca, "collection", "list"); code != 1 || !strings.Contains(stderr, "drop --tls-ca") {
		t.Errorf("TLS client against plaintext: %d %q", code, stderr)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wpcdb test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestImportCLI: `wpcdb import` reads the files itself when embedded and
// has the server read them from its import directory with --addr; both
// store the same items (compared with `get`), and a path leaving the
// server's directory is refused.
func TestImportCLI(t *testing.T) {
	dir := t.TempDir()
	const n, m, d = 30, 2, 4
	pts := make([]float32, n*m*d)
	for i := range pts {
		pts[i] = float32(i%5) + 0.25
	}
	writeNPYFloats(t, filepath.Join(dir, "P.npy"), []int{n, m, d}, pts)
	addr := startServer(t, &server.Options{ImportRoot: dir})
	data := filepath.Join(t.TempDir(), "db")
	for _, args := range [][]string{{"--data", data}, {"--addr", addr}} {
		if _, stderr, code := runCLI(t, "", append(args, "collection", "create", "c", "--dim", "4")...); code != 0 {
			t.Fatalf("%v create: %s", args, stderr)
		}
	}
	if stdout, stderr, code := runCLI(t, "", "--data", data, "import", "c", "--points", filepath.Join(dir, "P.npy"), "--batch", "7"); code != 0 || !strings.HasPrefix(stdout, "ingested 30 items") {
		t.Fatalf("embedded import: %d %q %q", code, stdout, stderr)
	}
	if stdout, stderr, code := runCLI(t, "", "--addr", addr, "import", "c", "--points", "P.npy", "--batch", "7"); code != 0 || !strings.HasPrefix(stdout, "ingested 30 items") {
		t.Fatalf("remote import: %d %q %q", code, stdout, stderr)
	}
	for _, id := range []string{"0", "17", "29"} {
		e, _, ec := runCLI(t, "", "--data", data, "get", "c", id)
		r, _, rc := runCLI(t, "", "--addr", addr, "get", "c", id)
		if ec != 0 || rc != 0 || e != r {
			t.Errorf("get %s: embedded %d %q, remote %d %q", id, ec, e, rc, r)
		}
	}
	if _, stderr, code := runCLI(t, "", "--addr", addr, "import", "c", "--points", filepath.Join(dir, "P.npy")); code != 1 || !strings.Contains(stderr, "InvalidArgument") {
		t.Errorf("absolute path: %d %q", code, stderr)
	}
}

// TestImportParquetCLI: `wpcdb import --parquet` embedded and through a
// server, and `ingest --parquet` (read by the client), store the same
// items as `ingest --input` of the same clouds as JSONL (compared with
// `get` and with `search`'s exact scores); mixing Parquet with NumPy
// flags is a usage error.
func TestImportParquetCLI(t *testing.T) {
	type row struct {
		ID     string      `parquet:"id"`
		Points [][]float32 `parquet:"points,list"`
		Year   int32       `parquet:"year"`
	}
	dir := t.TempDir()
	var rows []row
	var jsonl strings.Builder
	for i := range 30 {
		r := row{ID: fmt.Sprintf("r%d", i), Points: [][]float32{{float32(i%5) + 0.25, 1, 0, 2}, {0.5, float32(i % 3), 1, 1}}, Year: int32(2000 + i)}
		rows = append(rows, r)
		fmt.Fprintf(&jsonl, `{"id":%q,"points":[[%v,1,0,2],[0.5,%v,1,1]],"attrs":{"year":%d}}`+"\n", r.ID, r.Points[0][0], r.Points[1][1], r.Year)
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[row](&b, parquet.MaxRowsPerRowGroup(9))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "in.parquet"), b.Bytes(), 0o644)
	addr := startServer(t, &server.Options{ImportRoot: dir})
	data := filepath.Join(t.TempDir(), "db")
	for _, args := range [][]string{{"--data", data}, {"--addr", addr}} {
		for _, c := range []string{"pq", "js", "cl"} {
			if _, stderr, code := runCLI(t, "", append(args, "collection", "create", c, "--dim", "4")...); code != 0 {
				t.Fatalf("%v create: %s", args, stderr)
			}
		}
	}
	for _, run := range [][]string{
		{"--data", data, "import", "pq", "--parquet", filepath.Join(dir, "in.parquet"), "--batch", "7"},
		{"--addr", addr, "import", "pq", "--parquet", "in.parquet", "--batch", "7"},
		{"--data", data, "ingest", "cl", "--parquet", filepath.Join(dir, "in.parquet")},
		{"--addr", addr, "ingest", "cl", "--parquet", filepath.Join(dir, "in.parquet")},
	} {
		if stdout, stderr, code := runCLI(t, "", run...); code != 0 || !strings.HasPrefix(stdout, "ingested 30 items") {
			t.Fatalf("%v: %d %q %q", run, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"--data", data}, {"--addr", addr}} {
		if _, stderr, code := runCLI(t, jsonl.String(), append(args, "ingest", "js", "--input", "-")...); code != 0 {
			t.Fatalf("%v ingest jsonl: %s", args, stderr)
		}
		for _, id := range []string{"r0", "r17", "r29"} {
			want, _, _ := runCLI(t, "", append(args, "get", "js", id)...)
			for _, c := range []string{"pq", "cl"} {
				if got, _, code := runCLI(t, "", append(args, "get", c, id)...); code != 0 || got != want {
					t.Errorf("%v get %s %s: %q, JSONL's %q", args, c, id, got, want)
				}
			}
		}
		q := `{"points":[[1.25,1,0,2]]}`
		want, _, _ := runCLI(t, q, append(args, "search", "js", "--query", "-", "-k", "5", "--exact")...)
		if got, stderr, code := runCLI(t, q, append(args, "search", "pq", "--query", "-", "-k", "5", "--exact")...); code != 0 || got != want || want == "" {
			t.Errorf("%v search: %q (%s), JSONL's %q", args, got, stderr, want)
		}
	}
	if _, stderr, code := runCLI(t, "", "--data", data, "import", "pq", "--parquet", "x.parquet", "--ids", "ids.txt"); code != 2 || !strings.Contains(stderr, "go with --points") {
		t.Errorf("--parquet with --ids: %d %q", code, stderr)
	}
}

// TestClientTokenPlaintext: a client never sends a token in plaintext to an
// address off this machine, whichever flag gave it (TestClientToken: from
// $WPCDB_TOKEN), unless --insecure; nothing is dialled when it refuses.
func TestClientTokenPlaintext(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("tok\n"), 0o600)
	for _, args := range [][]string{
		{"--addr", "192.0.2.1:7070", "--token", "tok"},
		{"--addr", "192.0.2.1:7070", "--token-file", tokenFile},
		{"--addr", "db.example:7070", "--token", "tok"},
	} {
		_, stderr, code := runCLI(t, "", append(args, "collection", "list")...)
		if code != 2 || !strings.Contains(stderr, "refusing to send the bearer token in plaintext") {
			t.Errorf("%v: %d %q", args, code, stderr)
		}
	}
	// With --insecure the token goes (here to a server that wants it).
	addr := startServer(t, &server.Options{Token: "tok"})
	if _, stderr, code := runCLI(t, "", "--addr", addr, "--token", "tok", "--insecure", "collection", "list"); code != 0 {
		t.Errorf("--insecure: %d %q", code, stderr)
	}
}
