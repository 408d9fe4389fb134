package wpcdb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wpcdb/wpcdb/storage"
)

// SnapshotsDir is the folder of a data folder that snapshots go in by
// default (`wpcdb snapshot create`, a server's Snapshot).
const SnapshotsDir = "snapshots"

// SnapshotInfo describes a snapshot: a folder holding a consistent copy of
// a database, which `wpcdb restore` (Restore) turns into a data folder.
type SnapshotInfo struct {
	Name    string    `json:"name"`
	Dir     string    `json:"dir"`
	Created time.Time `json:"created"`
	Bytes   int64     `json:"bytes"`
}

// Snapshot writes a consistent copy of the whole database to dir, which
// must not exist; the copy opens with Open (or `wpcdb --data dir`). The
// first-stage indexes are saved first, so the copy opens with them instead
// of rebuilding them.
func (db *DB) Snapshot(dir string) error {
	if err := db.SaveIndexes(); err != nil {
		return err
	}
	return db.store.Checkpoint(dir)
}

// CreateSnapshot writes a snapshot named name into the folder root
// (created when needed). The name is one path element, never a path, so
// nothing is written outside root, through a symlink or otherwise; a name
// already taken (a dangling symlink included) is refused with fs.ErrExist.
func (db *DB) CreateSnapshot(root, name string) (SnapshotInfo, error) {
	if name == "" {
		return SnapshotInfo{}, fmt.Errorf("%w: snapshot name: required", ErrInvalidArgument)
	}
	if len(name) > 255 {
		return SnapshotInfo{}, fmt.Errorf("%w: snapshot name %s: at most 255 bytes (one file name)", ErrInvalidArgument, storage.QuoteID(name))
	}
	if name == "." || name == ".." || strings.ContainsAny(name, `/\`) || !filepath.IsLocal(name) {
		return SnapshotInfo{}, fmt.Errorf("%w: snapshot name %s: must be a name (one path element), not a path: snapshots are written in %s",
			ErrInvalidArgument, storage.QuoteID(name), root)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return SnapshotInfo{}, err
	}
	dir := filepath.Join(root, name)
	// Lstat, not Stat: an existing entry, even a dangling symlink, is
	// never followed.
	if _, err := os.Lstat(dir); err == nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot %s: %w", storage.QuoteID(name), fs.ErrExist)
	}
	if err := db.Snapshot(dir); err != nil {
		return SnapshotInfo{}, err
	}
	return snapshotInfo(root, name)
}

// ListSnapshots lists the snapshots in root, sorted by name: its folders
// that hold a wpcdb database. A missing root has none.
func ListSnapshots(root string) ([]SnapshotInfo, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []SnapshotInfo
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		info, err := snapshotInfo(root, e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a snapshot (or one being written)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// snapshotInfo describes the snapshot root/name; fs.ErrNotExist when that
// folder has no identity file (written last by a snapshot).
func snapshotInfo(root, name string) (SnapshotInfo, error) {
	dir := filepath.Join(root, name)
	id, err := os.Stat(filepath.Join(dir, storage.IdentityFile))
	if err != nil {
		return SnapshotInfo{}, err
	}
	info := SnapshotInfo{Name: name, Dir: dir, Created: id.ModTime().UTC()}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return SnapshotInfo{}, err
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			info.Bytes += fi.Size()
		}
	}
	return info, nil
}

// ErrRestoreTarget: Restore was given a folder that is not new or empty.
var ErrRestoreTarget = storage.ErrRestoreTarget

// Restore makes dir a copy of the database in snapshot (a folder written by
// Snapshot or CreateSnapshot). dir must be absent or an empty folder: a
// database, live or not, is never overwritten (ErrRestoreTarget, nothing
// changed). The copy is checked by opening it; it opens with the
// first-stage indexes saved in the snapshot.
func Restore(snapshot, dir string, opts *Options) error {
	if err := storage.Restore(snapshot, dir); err != nil {
		return err
	}
	db, err := Open(dir, opts)
	if err != nil {
		return fmt.Errorf("wpcdb: restored %s into %s, but it does not open: %w", snapshot, dir, err)
	}
	return db.Close()
}
