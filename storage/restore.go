package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// ErrRestoreTarget: Restore was given a destination that is not a new or
// empty folder. Nothing was changed.
var ErrRestoreTarget = wpcerr.New(wpcerr.FailedPrecondition, "storage: restore target is not empty")

// Restore copies the database in src (a snapshot written by Checkpoint, or
// a closed database) into dst, which must be absent or an empty folder: a
// folder holding anything, a database above all, is refused and left
// untouched. The files are copied (a snapshot's are hard links to the live
// database's, which must not be shared) into a temporary folder beside dst,
// synced, and renamed into place, so a crash leaves dst as it was. Folders
// inside src (such as a database's snapshots) are not copied.
func Restore(src, dst string) error {
	state, err := inspectFolder(vfs.Default, src)
	if err != nil {
		return err
	}
	if state != folderOpen {
		return fmt.Errorf("%w: %s is not a wpcdb snapshot (no %s file and manifest marker)", ErrNotDatabase, src, IdentityFile)
	}
	// A database in use (here or in another process) changes under the
	// copy: refuse it, as Open would. A snapshot has no LOCK file.
	release, err := claimFolder(vfs.Default, src)
	if err != nil {
		return fmt.Errorf("%w; restore from a snapshot of it (wpcdb snapshot create)", err)
	}
	defer release()
	if pid := lockHolder(filepath.Join(src, "LOCK")); pid > 0 {
		return fmt.Errorf("%w: %s is in use by another wpcdb process, pid %d; restore from a snapshot of it (wpcdb snapshot create)", ErrLocked, src, pid)
	}
	entries, err := os.ReadDir(dst)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("storage: restore into %s: %w", dst, err)
	case len(entries) > 0:
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		return fmt.Errorf("%w: %s holds %s; restore only into a new or empty folder, never over a database (nothing was changed)", ErrRestoreTarget, dst, listSome(names))
	}
	dst = filepath.Clean(dst)
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("storage: restore into %s: %w", dst, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".restore-")
	if err != nil {
		return fmt.Errorf("storage: restore into %s: %w", dst, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	srcEntries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("storage: restore from %s: %w", src, err)
	}
	for _, e := range srcEntries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		if err := copyFileSynced(filepath.Join(src, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			return fmt.Errorf("storage: restore from %s: %w", src, err)
		}
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if exists { // an empty folder: make room for the rename
		if err := os.Remove(dst); err != nil {
			return fmt.Errorf("storage: restore into %s: %w", dst, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("storage: restore into %s: %w", dst, err)
	}
	done = true
	return syncDir(parent)
}

func copyFileSynced(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Sync(), out.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	return errors.Join(d.Sync(), d.Close())
}
