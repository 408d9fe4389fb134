package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// IdentityFile is the file that marks a folder as a wpcdb database. It is
// written (and synced) before Pebble creates anything, and Open refuses a
// non-empty folder without it: pointing --data at the wrong folder must
// never let Pebble delete files that merely look like its own.
const IdentityFile = "WPCDB"

// identityContent is IdentityFile's first line.
const identityContent = "wpcdb database\n"

// ErrNotDatabase: Open was given a folder that holds files but is not a
// wpcdb database. Nothing in it was changed.
var ErrNotDatabase = wpcerr.New(wpcerr.FailedPrecondition, "storage: not a wpcdb database")

// ErrLocked: another process, or this one, has the database open.
var ErrLocked = wpcerr.New(wpcerr.Locked, "storage: database in use")

// folderState says how Open must treat dir.
type folderState int

const (
	folderNew    folderState = iota // empty or absent: create a database
	folderOpen                      // a wpcdb database: open it, never create
	folderLegacy                    // a Pebble database without IdentityFile: check it is wpcdb's first
)

// inspectFolder decides, before Pebble touches dir, whether it may be
// created, opened, or must be refused. It never writes.
func inspectFolder(fs vfs.FS, dir string) (folderState, error) {
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return folderNew, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	hasIdentity, hasMarker := false, false
	var others []string // files other than the identity file and LOCK
	var dirs []string
	for _, n := range names {
		switch {
		case n == IdentityFile:
			hasIdentity = true
		case strings.HasPrefix(n, "marker.manifest."):
			hasMarker = true
			others = append(others, n)
		case n == "LOCK":
		default:
			if st, err := fs.Stat(fs.PathJoin(dir, n)); err == nil && st.IsDir() {
				dirs = append(dirs, n) // in a database: e.g. the snapshots folder
				continue
			}
			others = append(others, n)
		}
	}
	if !hasIdentity {
		others = append(others, dirs...) // a folder of folders is not empty
	}
	switch {
	case hasIdentity:
		if err := checkIdentity(fs, dir); err != nil {
			return 0, err
		}
		if hasMarker {
			return folderOpen, nil
		}
		if !onlyCreationLeftovers(fs, dir, others) {
			// Pebble would take a folder without a manifest marker for a
			// new database and delete every file it does not reference.
			return 0, fmt.Errorf("%w: %s: the manifest marker (marker.manifest.*) is missing, so the database cannot be read; refusing to open it (nothing was changed); restore the file or a snapshot",
				ErrCorrupt, dir)
		}
		return folderNew, nil // a crash between writing the identity file and creating the database
	case len(others) == 0:
		return folderNew, nil
	case hasMarker:
		return folderLegacy, nil
	}
	return 0, fmt.Errorf("%w: %s holds files (%s) but no %s file; refusing to open it (nothing was changed): give --data an empty or new folder, or an existing wpcdb database",
		ErrNotDatabase, dir, listSome(others), IdentityFile)
}

// onlyCreationLeftovers reports whether names (the files of a folder with
// an identity file and no manifest marker) are what a crash while Pebble
// was creating the database leaves: manifests, options, the format marker
// and empty WALs, and no table. Nothing can have been written before the
// marker existed, so such a folder is created afresh.
func onlyCreationLeftovers(fs vfs.FS, dir string, names []string) bool {
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "MANIFEST-"), strings.HasPrefix(n, "OPTIONS-"), strings.HasPrefix(n, "marker.format-version."):
		case strings.HasSuffix(n, ".log"):
			if st, err := fs.Stat(fs.PathJoin(dir, n)); err != nil || st.Size() != 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// listSome names the first few of names.
func listSome(names []string) string {
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

func checkIdentity(fs vfs.FS, dir string) error {
	path := fs.PathJoin(dir, IdentityFile)
	f, err := fs.Open(path)
	if err != nil {
		return fmt.Errorf("storage: read %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, len(identityContent))
	if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, []byte(identityContent)) {
		return fmt.Errorf("%w: %s does not identify a wpcdb database (damaged?); refusing to open %s (nothing was changed)", ErrCorrupt, path, dir)
	}
	return nil
}

// writeIdentity creates dir if needed and writes IdentityFile durably.
func writeIdentity(fs vfs.FS, dir string) error {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage: create %s: %w", dir, err)
	}
	path := fs.PathJoin(dir, IdentityFile)
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", path, err)
	}
	if _, err := f.Write([]byte(identityContent)); err != nil {
		f.Close()
		return fmt.Errorf("storage: write %s: %w", path, err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("storage: write %s: %w", path, err)
	}
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	return errors.Join(d.Sync(), d.Close())
}

// isLegacyDatabase opens a Pebble database that has no identity file
// read-only (which changes nothing) and says whether it holds wpcdb's
// format version key: databases made before IdentityFile existed. Pebble
// creates a LOCK file even read-only; one it created in a folder that
// turns out not to be wpcdb's is removed, so a refused folder is left as
// it was.
func isLegacyDatabase(fs vfs.FS, dir string) (ok bool, err error) {
	lock := fs.PathJoin(dir, "LOCK")
	if _, err := fs.Stat(lock); errors.Is(err, os.ErrNotExist) {
		defer func() {
			if !ok {
				fs.Remove(lock)
			}
		}()
	}
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, ReadOnly: true, Logger: quietLogger{}})
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return false, lockedError(dir, err)
		}
		return false, fmt.Errorf("%w: %s holds files named like Pebble's but no %s file, and they do not open as a database (%v); refusing to open it (nothing was changed)",
			ErrNotDatabase, dir, IdentityFile, err)
	}
	defer db.Close()
	_, closer, err := db.Get(versionKey)
	if err != nil {
		return false, nil
	}
	closer.Close()
	return true, nil
}

// openFolders holds the folders this process has open, keyed by their
// file system and path. Pebble's LOCK file keeps other processes out, but
// a second Open in the same process fails in Pebble with an untyped error,
// so Open claims the folder here first.
var openFolders sync.Map // folderKey → struct{}

type folderKey struct {
	fs   vfs.FS
	path string
}

// claimFolder claims dir for this process until release is called, or
// returns ErrLocked when it is already open here.
func claimFolder(fs vfs.FS, dir string) (release func(), err error) {
	path := filepath.Clean(dir)
	if fs == vfs.Default {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
	}
	key := folderKey{fs: fs, path: path}
	if _, taken := openFolders.LoadOrStore(key, struct{}{}); taken {
		return nil, fmt.Errorf("%w: %s is already open in this process", ErrLocked, dir)
	}
	return func() { openFolders.Delete(key) }, nil
}

// lockedError turns Pebble's failure to take the folder's lock into a
// message that says what happened.
func lockedError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
		who := "another wpcdb process"
		if pid := lockHolder(filepath.Join(dir, "LOCK")); pid > 0 {
			who = fmt.Sprintf("another wpcdb process, pid %d", pid)
		}
		return fmt.Errorf("%w: %s is in use by %s (it holds the LOCK file); stop it, or use --addr to talk to its server", ErrLocked, dir, who)
	}
	return fmt.Errorf("storage: open %s: %w", dir, err)
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
