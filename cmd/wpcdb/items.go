package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb/internal/cloudjson"
)

func (a *app) getCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME ID...",
		Short: "Print stored clouds as JSON objects in the input format, one a line",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{errors.New("get needs NAME and at least one ID")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				if len(args) > 2 {
					return a.getMany(b, cmd, args[0], args[1:])
				}
				it, err := b.Get(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				line := cloudjson.AppendJSON(nil, cloudjson.Record{ID: it.ID, Cloud: it.Cloud, Attrs: it.Attrs})
				_, err = a.stdout.Write(append(line, '\n'))
				return err
			})
		},
	}
}

func (a *app) deleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME ID...",
		Short: "Delete items by ID (unknown IDs are counted, not an error)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{errors.New("delete needs NAME and at least one ID")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				n, err := b.Delete(cmd.Context(), args[0], args[1:])
				if err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(map[string]any{"deleted": n, "requested": len(args) - 1})
				}
				_, err = fmt.Fprintf(a.stdout, "deleted %d of %d\n", n, len(args)-1)
				return err
			})
		},
	}
}
