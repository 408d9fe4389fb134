package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// simFlags are the similarity options shared by commands that score.
type simFlags struct {
	kernel      string
	norm        string
	noNormalize bool
	score       string
}

func (f *simFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kernel, "kernel", wpcsim.DefaultKernelSpec, "kernel spec: sums of α*linear, α*gaussian(σ), α*imq(c); or maxsim")
	fl.StringVar(&f.norm, "norm", "mean", "normalization: mean (1/(N·M)) or sum")
	fl.BoolVar(&f.noNormalize, "no-normalize", false, "use points as given instead of L2-normalizing them")
	fl.StringVar(&f.score, "score", "inner", "score mode: inner, cosine or mmd")
}

func (f *simFlags) similarity() (*wpcsim.Similarity, error) {
	k, err := wpcsim.ParseKernel(f.kernel)
	if err != nil {
		return nil, err
	}
	norm, err := wpcsim.ParseNorm(f.norm)
	if err != nil {
		return nil, err
	}
	mode, err := wpcsim.ParseScoreMode(f.score)
	if err != nil {
		return nil, err
	}
	return wpcsim.New(wpcsim.Config{Kernel: k, Norm: norm, RawPoints: f.noNormalize, Score: mode})
}

func (a *app) simCommand() *cobra.Command {
	var f simFlags
	var rffDim int
	var rffSeed uint64
	cmd := &cobra.Command{
		Use:   "sim [flags] QUERY.json ITEM.json",
		Short: "Print the exact similarity of two JSON clouds",
		Long: `sim prints the score of ITEM against QUERY as one number: g(Q, X) for the
inner score mode, the cosine for cosine, the (non-negative) MMD distance for mmd.
Each file holds one JSON cloud {"weights": [...], "points": [[...], ...]}; "-"
reads it from standard input. With --json the number comes in an object with
the configuration it was computed under. With --rff-dim D it prints instead the
random-feature estimate (PAPER.md's φ with D features per nonlinear term, drawn
from --rff-seed): <φ(Q), φ(X)> for inner, the cosine of the φs, ||φ(Q) − φ(X)||
for mmd.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("sim needs QUERY.json and ITEM.json, got %d arguments", len(args))}
			}
			if args[0] == "-" && args[1] == "-" {
				return usageError{fmt.Errorf("sim: only one of QUERY and ITEM can be read from standard input")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sim, err := f.similarity()
			if err != nil {
				return err
			}
			q, err := a.readCloud("query", args[0])
			if err != nil {
				return err
			}
			x, err := a.readCloud("item", args[1])
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("rff-dim") || cmd.Flags().Changed("rff-seed") {
				if rffDim <= 0 {
					return usageError{fmt.Errorf("sim: --rff-dim must be positive, got %d", rffDim)}
				}
				fm, err := wpcsim.NewFeatureMap(sim.Config(), q.Dim, wpcsim.FeatureOptions{D: rffDim, Seed: rffSeed})
				if err != nil {
					return err
				}
				if err := x.Validate(sim.Limits(q.Dim, 0)); err != nil {
					return fmt.Errorf("item %s: %w", displayPath(args[1]), err)
				}
				est, err := fm.EstimateScore(q, x)
				if err != nil {
					return fmt.Errorf("query %s: %w", displayPath(args[0]), err)
				}
				return a.printScore(sim.Config(), est)
			}
			sc, err := sim.NewScorer(q)
			if err != nil {
				return fmt.Errorf("query %s: %w", displayPath(args[0]), err)
			}
			score, err := sc.Score(x)
			if err != nil {
				return fmt.Errorf("item %s: %w", displayPath(args[1]), err)
			}
			return a.printScore(sim.Config(), score)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&rffDim, "rff-dim", wpcsim.DefaultFeatureD, "print the random-feature estimate with D features per nonlinear term")
	cmd.Flags().Uint64Var(&rffSeed, "rff-seed", 0, "seed of the random-feature sample (with --rff-dim)")
	return cmd
}

// readCloud reads one JSON cloud from a file, or stdin for "-", of at most
// maxLineBytes (a cloud read from /dev/zero is an error, not a process
// growing until it is killed).
func (a *app) readCloud(role, path string) (wpcsim.Cloud, error) {
	var r io.Reader = a.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return wpcsim.Cloud{}, fmt.Errorf("%s: %w", role, err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxLineBytes+1))
	if err != nil {
		return wpcsim.Cloud{}, fmt.Errorf("%s: %w", role, err)
	}
	if len(data) > maxLineBytes {
		return wpcsim.Cloud{}, fmt.Errorf("%s %s: %w", role, displayPath(path), errLineTooLong)
	}
	rec, err := cloudjson.Decode(data)
	if err != nil {
		return wpcsim.Cloud{}, fmt.Errorf("%s %s: %w", role, displayPath(path), err)
	}
	return rec.Cloud, nil
}

func (a *app) printScore(cfg wpcsim.Config, score float64) error {
	if !a.g.json {
		_, err := fmt.Fprintln(a.stdout, strconv.FormatFloat(score, 'g', -1, 64))
		return err
	}
	b, err := json.Marshal(struct {
		Score     float64 `json:"score"`
		Kernel    string  `json:"kernel"`
		Norm      string  `json:"norm"`
		Normalize bool    `json:"normalize"`
		Mode      string  `json:"score_mode"`
	}{score, cfg.Kernel.String(), cfg.Norm.String(), !cfg.RawPoints, cfg.Score.String()})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, string(b))
	return err
}

func displayPath(p string) string {
	if p == "-" {
		return "(stdin)"
	}
	return p
}
