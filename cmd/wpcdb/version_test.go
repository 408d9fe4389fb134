package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/server"
)

func TestVersion(t *testing.T) {
	stdout, _, code := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(stdout, "wpcdb ") || !strings.Contains(stdout, "go1.") {
		t.Errorf("version: %d %q", code, stdout)
	}
	stdout, _, code = runCLI(t, "", "--json", "version")
	if code != 0 || !strings.Contains(stdout, `"version"`) {
		t.Errorf("--json version: %d %q", code, stdout)
	}
	// With --addr, the server's too (no token needed: from health).
	addr := startServer(t, &server.Options{Token: "tok", Version: "v9.9.9-test"})
	stdout, stderr, code := runCLI(t, "", "--addr", addr, "version")
	if code != 0 || !strings.HasSuffix(stdout, "server "+addr+": wpcdb v9.9.9-test\n") {
		t.Errorf("version --addr: %d %q %q", code, stdout, stderr)
	}
	stdout, _, code = runCLI(t, "", "--addr", addr, "--json", "version")
	if code != 0 || !strings.Contains(stdout, `"server_version":"v9.9.9-test"`) {
		t.Errorf("--json version --addr: %d %q", code, stdout)
	}
}

// TestClientToken checks the client's token sources: --token-file and
// $WPCDB_TOKEN, and that a token is not sent in plaintext off loopback.
func TestClientToken(t *testing.T) {
	addr := startServer(t, &server.Options{Token: "tok"})
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("tok\n"), 0o600)
	if _, stderr, code := runCLI(t, "", "--addr", addr, "--token-file", file, "collection", "list"); code != 0 {
		t.Errorf("--token-file: %d %q", code, stderr)
	}
	if _, stderr, code := runCLI(t, "", "--addr", addr, "--token", "tok", "--token-file", file, "collection", "list"); code != 2 || !strings.Contains(stderr, "not both") {
		t.Errorf("--token and --token-file: %d %q", code, stderr)
	}
	t.Setenv("WPCDB_TOKEN", "tok")
	if _, stderr, code := runCLI(t, "", "--addr", addr, "collection", "list"); code != 0 {
		t.Errorf("$WPCDB_TOKEN: %d %q", code, stderr)
	}
	t.Setenv("WPCDB_TOKEN", "wrong")
	if _, stderr, code := runCLI(t, "", "--addr", addr, "--token", "tok", "collection", "list"); code != 0 {
		t.Errorf("--token wins over $WPCDB_TOKEN: %d %q", code, stderr)
	}
	// 192.0.2.1 (TEST-NET-1) is never dialled: the token check comes first.
	if _, stderr, code := runCLI(t, "", "--addr", "192.0.2.1:7070", "collection", "list"); code != 2 || !strings.Contains(stderr, "refusing to send the bearer token in plaintext") {
		t.Errorf("token over plaintext off loopback: %d %q", code, stderr)
	}
}
