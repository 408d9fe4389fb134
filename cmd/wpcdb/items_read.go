package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
)

// getMany prints the items with these IDs, one JSON line each, in request
// order. Missing IDs fail the command (naming every one) and print nothing,
// as a single missing ID does.
func (a *app) getMany(b backend, cmd *cobra.Command, coll string, ids []string) error {
	items, missing, err := b.GetMany(cmd.Context(), coll, ids)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s in collection %q", wpcdb.ErrNotFound, quoteAll(missing), coll)
	}
	var out []byte
	for _, it := range items {
		out = cloudjson.AppendJSON(out, cloudjson.Record{ID: it.ID, Cloud: it.Cloud, Attrs: it.Attrs})
		out = append(out, '\n')
	}
	_, err = a.stdout.Write(out)
	return err
}

func quoteAll(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return strings.Join(q, ", ")
}

func (a *app) countCommand() *cobra.Command {
	var filter string
	cmd := &cobra.Command{
		Use:   "count NAME [--filter EXPR]",
		Short: "Count the items of a collection, or those passing a filter",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				n, err := b.Count(cmd.Context(), args[0], filter)
				if err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(map[string]any{"count": n})
				}
				_, err = fmt.Fprintln(a.stdout, n)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&filter, "filter", "", `only items whose attributes match, e.g. 'color = "red"'`)
	return cmd
}

func (a *app) scrollCommand() *cobra.Command {
	var (
		opts     wpcdb.ScrollOptions
		maxItems int
	)
	cmd := &cobra.Command{
		Use:   "scroll NAME [--filter EXPR] [--with-clouds] [--page-size N] [--cursor ID] [--max N]",
		Short: "Print every item (or those passing a filter) in ID order, one JSON line each",
		Long: `scroll lists the items of NAME in ID order (byte-wise), a page at a time, and
prints one JSON line per item: {"id": ..., "attrs": ...}, or with --with-clouds
the whole item in the ingest format, so that the output re-ingests with
'wpcdb ingest' (an export). Each item that exists throughout the scroll is
printed exactly once, whatever is written meanwhile. --cursor starts after that
ID; --max stops after N items.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit <= 0 || opts.Limit > wpcdb.MaxScrollLimit {
				return usageError{fmt.Errorf("scroll: --page-size must be 1 to %d, got %d", wpcdb.MaxScrollLimit, opts.Limit)}
			}
			return a.withBackend(func(b backend) error {
				printed := 0
				for {
					page, err := b.Scroll(cmd.Context(), args[0], opts)
					if err != nil {
						return err
					}
					var out []byte
					for _, it := range page.Items {
						if maxItems > 0 && printed == maxItems {
							break
						}
						if opts.WithClouds {
							out = cloudjson.AppendJSON(out, cloudjson.Record{ID: it.ID, Cloud: it.Cloud, Attrs: it.Attrs})
						} else {
							line, err := json.Marshal(struct {
								ID    string         `json:"id"`
								Attrs map[string]any `json:"attrs,omitempty"`
							}{it.ID, it.Attrs})
							if err != nil {
								return err
							}
							out = append(out, line...)
						}
						out = append(out, '\n')
						printed++
					}
					if _, err := a.stdout.Write(out); err != nil {
						return err
					}
					if page.NextCursor == "" || (maxItems > 0 && printed == maxItems) {
						return nil
					}
					opts.Cursor = page.NextCursor
				}
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Filter, "filter", "", `only items whose attributes match, e.g. 'color = "red"'`)
	fl.BoolVar(&opts.WithClouds, "with-clouds", false, "print whole items (points, weights) in the ingest format")
	fl.IntVar(&opts.Limit, "page-size", wpcdb.DefaultScrollLimit, "items per request")
	fl.StringVar(&opts.Cursor, "cursor", "", "start after this ID")
	fl.IntVar(&maxItems, "max", 0, "stop after this many items (0: all)")
	return cmd
}

func (a *app) updateAttrsCommand() *cobra.Command {
	var (
		set   string
		unset []string
	)
	cmd := &cobra.Command{
		Use:   `update-attrs NAME ID [--set '{"color": "red"}'] [--unset NAME]...`,
		Short: "Set and remove attributes of an item without resending its cloud",
		Long: `update-attrs sets the attributes of the JSON object --set (strings, numbers,
booleans) and removes those named by --unset, in one durable write; the cloud is
not rewritten. It prints the item's attributes after the update.`,
		Args: exactArgs(2, "NAME and ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var attrs map[string]any
			if set != "" {
				if err := json.Unmarshal([]byte(set), &attrs); err != nil {
					return usageError{fmt.Errorf("update-attrs: --set: %v", err)}
				}
			}
			if attrs == nil && len(unset) == 0 {
				return usageError{errors.New("update-attrs: give --set or --unset")}
			}
			return a.withBackend(func(b backend) error {
				after, err := b.UpdateAttrs(cmd.Context(), args[0], args[1], attrs, unset)
				if err != nil {
					return err
				}
				if after == nil {
					after = map[string]any{}
				}
				return a.printJSON(map[string]any{"id": args[1], "attrs": after})
			})
		},
	}
	cmd.Flags().StringVar(&set, "set", "", "JSON object of attributes to set")
	cmd.Flags().StringSliceVar(&unset, "unset", nil, "attribute to remove (repeatable, or comma-separated)")
	return cmd
}
