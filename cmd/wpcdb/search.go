package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb"
)

type searchFlags struct {
	query      string
	filter     string
	k          int
	offset     int
	withAttrs  bool
	exact      bool
	candidates int
	ef         int
	explain    bool
}

func (a *app) searchCommand() *cobra.Command {
	var f searchFlags
	cmd := &cobra.Command{
		Use:   "search NAME --query q.json [-k 10] [--filter EXPR] [--exact] [--candidates R] [--ef E] [--explain]",
		Short: "Find the k items most similar to a query cloud",
		Long: `search finds the k items of NAME most similar to the JSON cloud in --query
("-" reads standard input) by the collection's exact similarity: a first stage
proposes candidates and every reported score is computed exactly. --exact scans
every item instead (slow; the reference answer). --filter restricts the search to
items whose attributes match, e.g. 'color = "red" AND year >= 2020' (=, !=, <, <=,
>, >=, IN (...), AND, OR, NOT, parentheses; a comparison on a missing attribute is
false). Text output is one hit per line;
--json prints {"hits": [{"id": ..., "score": ...}], "stats": {...}}; mmd hits
also carry "distance", and their score is the negated distance.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.query == "" {
				return usageError{errors.New("search: --query is required")}
			}
			q, err := a.readCloud("query", f.query)
			if err != nil {
				return err
			}
			return a.withBackend(func(b backend) error {
				res, err := b.Search(cmd.Context(), args[0], q, wpcdb.SearchOptions{K: f.k, Offset: f.offset, WithAttrs: f.withAttrs, Filter: f.filter, Exact: f.exact, Candidates: f.candidates, Ef: f.ef})
				if err != nil {
					return err
				}
				return a.printHits(res, f.explain, f.withAttrs, f.offset)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.query, "query", "", "JSON cloud to search with, or - for standard input")
	fl.IntVarP(&f.k, "k", "k", 10, "number of hits (at most 10000; 0 means 10)")
	fl.IntVar(&f.offset, "offset", 0, "skip the best N hits (paging; offset + k is at most 10000)")
	fl.BoolVar(&f.withAttrs, "with-attrs", false, "print each hit's attributes")
	fl.StringVar(&f.filter, "filter", "", `only items whose attributes match, e.g. 'color = "red" AND year >= 2020'`)
	fl.BoolVar(&f.exact, "exact", false, "scan every item with the exact kernel instead of using the first stage")
	fl.IntVar(&f.candidates, "candidates", 0, "first-stage depth R (default max(10k, 100))")
	fl.IntVar(&f.ef, "ef", 0, "first-stage index beam width (default: the index's)")
	fl.BoolVar(&f.explain, "explain", false, "print how the search ran (plan, candidates, timings)")
	return cmd
}

func (a *app) rerankCommand() *cobra.Command {
	var query string
	cmd := &cobra.Command{
		Use:   "rerank NAME --query q.json ID...",
		Short: "Score given items exactly against a query, best first",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{errors.New("rerank needs NAME and at least one ID")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if query == "" {
				return usageError{errors.New("rerank: --query is required")}
			}
			q, err := a.readCloud("query", query)
			if err != nil {
				return err
			}
			return a.withBackend(func(b backend) error {
				res, err := b.Rerank(cmd.Context(), args[0], q, args[1:])
				if err != nil {
					return err
				}
				return a.printHits(res, false, false, 0)
			})
		},
	}
	cmd.Flags().StringVar(&query, "query", "", "JSON cloud to score against, or - for standard input")
	return cmd
}

type hitJSON struct {
	ID       string         `json:"id"`
	Score    float64        `json:"score"`
	Distance *float64       `json:"distance,omitempty"`
	Attrs    map[string]any `json:"attrs,omitempty"`
}

// printHits prints a search's or rerank's hits; ranks start after rank0
// (a search's offset).
func (a *app) printHits(res hits, explain, withAttrs bool, rank0 int) error {
	mmd := res.score.LowerIsCloser()
	if a.g.json {
		hits := make([]hitJSON, len(res.Hits))
		for i, h := range res.Hits {
			hits[i] = hitJSON{ID: h.ID, Score: h.Score, Attrs: h.Attrs}
			if mmd {
				d := h.Distance
				hits[i].Distance = &d
			}
		}
		out := map[string]any{"hits": hits, "stats": res.Stats}
		if len(res.Missing) > 0 {
			out["missing"] = res.Missing
		}
		return a.printJSON(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	header := "RANK\tID\tSCORE"
	if mmd {
		header += "\tDISTANCE"
	}
	if withAttrs {
		header += "\tATTRS"
	}
	fmt.Fprintln(tw, header)
	for i, h := range res.Hits {
		line := fmt.Sprintf("%d\t%s\t%s", rank0+i+1, h.ID, strconv.FormatFloat(h.Score, 'g', -1, 64))
		if mmd {
			line += "\t" + strconv.FormatFloat(h.Distance, 'g', -1, 64)
		}
		if withAttrs {
			b, err := json.Marshal(h.Attrs)
			if err != nil {
				return err
			}
			line += "\t" + string(b)
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Missing) > 0 {
		if _, err := fmt.Fprintf(a.stdout, "not found: %s\n", quoteAll(res.Missing)); err != nil {
			return err
		}
	}
	if explain {
		s := res.Stats
		plan := s.Plan
		if s.FirstStage != "" {
			plan += " (" + s.FirstStage + ")"
		}
		_, err := fmt.Fprintf(a.stdout, "plan %s: %d items pass, %d candidates, %d reranked; first stage %.3f ms, rerank %.3f ms, total %.3f ms\n",
			plan, s.Passing, s.Candidates, s.Reranked, s.FirstStageMs, s.RerankMs, s.TotalMs)
		return err
	}
	return nil
}
