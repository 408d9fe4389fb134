package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// TestOpenRefusesForeignFolder: a non-empty folder that is not a wpcdb
// database is refused and left byte for byte as it was, even when its
// files are named like Pebble's.
func TestOpenRefusesForeignFolder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"000123.log": "my log", "000007.sst": "my table", "notes.txt": "hello"}
	// A folder holding only folders is not empty either.
	onlyDirs := t.TempDir()
	os.Mkdir(filepath.Join(onlyDirs, "photos"), 0o755)
	if _, err := Open(onlyDirs, nil); !errors.Is(err, ErrNotDatabase) {
		t.Errorf("Open of a folder of folders: %v, want ErrNotDatabase", err)
	}
	for n, v := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open(dir, nil)
	if !errors.Is(err, ErrNotDatabase) {
		t.Fatalf("Open of a foreign folder: %v, want ErrNotDatabase", err)
	}
	names, _ := os.ReadDir(dir)
	if len(names) != len(files) {
		t.Fatalf("folder now holds %d entries, want %d", len(names), len(files))
	}
	for n, v := range files {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != v {
			t.Errorf("%s: %q, %v; want it untouched", n, b, err)
		}
	}
	// With a manifest marker too, the folder is tried as a database made
	// before the identity file, read-only: still refused, and the LOCK
	// file Pebble takes even read-only does not stay behind.
	files["MANIFEST-000001"], files["marker.manifest.000001.MANIFEST-000001"] = "my manifest", ""
	for n, v := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(v), 0o644)
	}
	if _, err := Open(dir, nil); !errors.Is(err, ErrNotDatabase) {
		t.Errorf("Open of a foreign folder with a manifest marker: %v, want ErrNotDatabase", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != len(files) {
		t.Errorf("folder with a manifest marker now holds %d entries, want %d", len(names), len(files))
	}
}

// TestOpenMissingManifestMarker: a database whose marker.manifest.* file
// was deleted is an error naming the marker, and its data files survive.
func TestOpenMissingManifestMarker(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCollection("c", collconfig.Config{Dim: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	removed := 0
	for _, e := range before {
		if strings.HasPrefix(e.Name(), "marker.manifest.") {
			os.Remove(filepath.Join(dir, e.Name()))
			removed++
		}
	}
	if removed == 0 {
		t.Fatal("no manifest marker to remove")
	}
	_, err = Open(dir, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "marker.manifest") {
		t.Fatalf("Open without a manifest marker: %v, want ErrCorrupt naming the marker", err)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before)-removed {
		t.Fatalf("Open changed the folder: %d entries before, %d after", len(before)-removed, len(after))
	}
}

func TestOpenIdentity(t *testing.T) {
	t.Run("new folder gets the identity file, reopens", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if b, err := os.ReadFile(filepath.Join(dir, IdentityFile)); err != nil || string(b) != identityContent {
			t.Fatalf("identity file: %q, %v", b, err)
		}
		s, err = Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
	t.Run("damaged identity file", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		os.WriteFile(filepath.Join(dir, IdentityFile), []byte("garbage"), 0o644)
		if _, err := Open(dir, nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), IdentityFile) {
			t.Fatalf("got %v, want ErrCorrupt naming %s", err, IdentityFile)
		}
	})
	t.Run("database without identity file (older build) is adopted", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.CreateCollection("c", collconfig.Config{Dim: 2}, nil)
		s.Close()
		os.Remove(filepath.Join(dir, IdentityFile))
		s, err = Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Collections(); len(got) != 1 {
			t.Errorf("collections %v, want [c]", got)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, IdentityFile)); err != nil {
			t.Errorf("identity file not written on adoption: %v", err)
		}
	})
	t.Run("crash while Pebble created the database", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, IdentityFile), []byte(identityContent), 0o644)
		os.WriteFile(filepath.Join(dir, "MANIFEST-000001"), []byte("partial"), 0o644)
		os.WriteFile(filepath.Join(dir, "000002.log"), nil, 0o644)
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatalf("reopen after an interrupted creation: %v", err)
		}
		s.Close()
		// A WAL with data is not a leftover: it may hold writes.
		dir = t.TempDir()
		os.WriteFile(filepath.Join(dir, IdentityFile), []byte(identityContent), 0o644)
		os.WriteFile(filepath.Join(dir, "000002.log"), []byte("data"), 0o644)
		if _, err := Open(dir, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("no marker and a non-empty WAL: %v, want ErrCorrupt", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) || !errors.Is(err, wpcerr.Locked) || !strings.Contains(err.Error(), "already open in this process") {
			t.Fatalf("second Open: %v, want ErrLocked", err)
		}
	})
	t.Run("snapshot opens", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		snap := filepath.Join(t.TempDir(), "snap")
		if err := s.Checkpoint(snap); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2, err := Open(snap, nil)
		if err != nil {
			t.Fatal(err)
		}
		s2.Close()
	})
}

func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // "" = valid
	}{
		{"a", ""},
		{"é-日本", ""},
		{"", "must not be empty"},
		{strings.Repeat("x", MaxIDLength), ""},
		{strings.Repeat("x", MaxIDLength+1), "exceeds"},
		{"a\xffb", "not valid UTF-8 (byte 1)"},
		{"a\xc3", "not valid UTF-8"},
		{"\uFFFD", ""}, // the replacement character itself is a valid rune
		{"a\nb", "control character U+000A"},
		{"a\x00", "control character U+0000"},
		{"a\u0085", "control character U+0085"},
	} {
		err := CheckID(tc.id)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckID(%q) = %v, want %q", tc.id, err, tc.want)
		}
	}
}

func TestQuoteID(t *testing.T) {
	if got := QuoteID("a\nb"); got != `"a\nb"` {
		t.Errorf("short: %s", got)
	}
	long := strings.Repeat("é", 1000) // 2000 bytes
	got := QuoteID(long)
	if len(got) > 100 || !strings.Contains(got, "(2000 bytes)") || !strings.HasPrefix(got, `"éé`) {
		t.Errorf("long: %s", got)
	}
}

// TestLockedByAnotherProcess: a database open in another process is
// refused with ErrLocked naming that process's pid.
func TestLockedByAnotherProcess(t *testing.T) {
	if dir := os.Getenv("WPCDB_TEST_HOLD_LOCK"); dir != "" {
		s, err := Open(dir, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		io.ReadAll(os.Stdin) // hold the lock until the parent closes stdin
		s.Close()
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockedByAnotherProcess$")
	cmd.Env = append(os.Environ(), "WPCDB_TEST_HOLD_LOCK="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	_, err = Open(dir, nil)
	want := fmt.Sprintf("in use by another wpcdb process, pid %d", cmd.Process.Pid)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open of a folder locked by pid %d: %v", cmd.Process.Pid, err)
	}
}
