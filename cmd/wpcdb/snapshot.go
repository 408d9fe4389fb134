package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// snapshotter is the backend's part for snapshots: in <data>/snapshots
// embedded, in the server's snapshot directory remotely.
type snapshotter interface {
	CreateSnapshot(ctx context.Context, name string) (wpcdb.SnapshotInfo, error)
	ListSnapshots(ctx context.Context) ([]wpcdb.SnapshotInfo, error)
}

func (e embedded) snapshotRoot() string { return filepath.Join(e.data, wpcdb.SnapshotsDir) }

func (e embedded) CreateSnapshot(ctx context.Context, name string) (wpcdb.SnapshotInfo, error) {
	return e.db.CreateSnapshot(e.snapshotRoot(), name)
}

func (e embedded) ListSnapshots(ctx context.Context) ([]wpcdb.SnapshotInfo, error) {
	return wpcdb.ListSnapshots(e.snapshotRoot())
}

func (r *remote) CreateSnapshot(ctx context.Context, name string) (wpcdb.SnapshotInfo, error) {
	res, err := r.cli.Snapshot(ctx, &pb.SnapshotRequest{Dir: name})
	if err != nil {
		return wpcdb.SnapshotInfo{}, err
	}
	// The response names the folder; list to describe it.
	infos, err := r.ListSnapshots(ctx)
	if err != nil {
		return wpcdb.SnapshotInfo{}, err
	}
	for _, in := range infos {
		if in.Name == name {
			return in, nil
		}
	}
	return wpcdb.SnapshotInfo{Name: name, Dir: res.GetDir()}, nil
}

func (r *remote) ListSnapshots(ctx context.Context) ([]wpcdb.SnapshotInfo, error) {
	res, err := r.cli.ListSnapshots(ctx, &pb.ListSnapshotsRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]wpcdb.SnapshotInfo, len(res.GetSnapshots()))
	for i, s := range res.GetSnapshots() {
		out[i] = pbconv.SnapshotFromPB(s)
	}
	return out, nil
}

func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Create and list snapshots (consistent copies of the database, indexes included)",
		Long: `snapshot create NAME writes a consistent copy of the whole database, with its
first-stage indexes, into <data>/snapshots/NAME (with --addr: the server's
--snapshot-dir, default its <data>/snapshots); NAME is a name, not a path.
snapshot list lists them. wpcdb restore turns one into a new data folder.`,
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Write a snapshot named NAME",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				info, err := b.CreateSnapshot(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(info)
				}
				_, err = fmt.Fprintf(a.stdout, "snapshot %s written to %s (%d bytes)\n", info.Name, info.Dir, info.Bytes)
				return err
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the snapshots",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				infos, err := b.ListSnapshots(cmd.Context())
				if err != nil {
					return err
				}
				if a.g.json {
					if infos == nil {
						infos = []wpcdb.SnapshotInfo{}
					}
					return a.printJSON(infos)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tCREATED\tBYTES\tDIR")
				for _, in := range infos {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", in.Name, in.Created.Format(time.RFC3339), in.Bytes, in.Dir)
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

func (a *app) restoreCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restore SNAPSHOT --data DIR",
		Short: "Make DIR (new or empty) a copy of the database in the snapshot folder SNAPSHOT",
		Long: `restore copies the snapshot in the folder SNAPSHOT (e.g.
wpcdb-data/snapshots/NAME) into --data DIR, which must be new or empty: it never
writes over a database, live or not. The copy is written beside DIR and renamed
into place, then opened to check it; it opens with the snapshot's first-stage
indexes. Serve it with wpcdb serve --data DIR.`,
		Args: exactArgs(1, "SNAPSHOT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.g.addr != "" {
				return usageError{errors.New("restore: runs on the machine holding the snapshot; drop --addr")}
			}
			if !cmd.Flags().Changed("data") {
				return usageError{errors.New("restore: --data DIR (a new or empty folder) is required")}
			}
			if err := wpcdb.Restore(args[0], a.g.data, nil); err != nil {
				return err
			}
			if a.g.json {
				return a.printJSON(map[string]string{"snapshot": args[0], "data": a.g.data})
			}
			_, err := fmt.Fprintf(a.stdout, "restored %s into %s\n", args[0], a.g.data)
			return err
		},
	}
}
