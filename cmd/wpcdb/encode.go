package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/encoder"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// encodeFlags are the flags of encode and encode fit.
type encodeFlags struct {
	name   string
	model  string
	ingest string
	batch  int
	out    string
	// Shared by several encoders.
	dim       int
	maxPoints int
	seed      uint64
	// patch
	size, stride int
	posScale     float64
	noPosition   bool
	proj, weight string
	rgb          bool
	// text
	ngramMin, ngramMax int
	noNGrams, lines    bool
	k1                 float64
	minDF              int
	// tokens
	lengths, weights, ids, head, headProj, headWeight string
	headBias                                          float64
	inputDim                                          int
	compressRaw, compressSum, compressReport          bool
	kernel                                            string
}

func (f *encodeFlags) register(cmd *cobra.Command, fit bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "encoder", "", "encoder: "+strings.Join(encoder.Names(), ", "))
	fl.IntVar(&f.dim, "dim", 0, "patch: projected pixel dimension (--proj random: default 16; pca: the model's, or fewer); text: point dimension (default 256)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the random projection (patch), the hashed features (text) or k-means (tokens)")
	fl.IntVar(&f.size, "patch-size", 7, "patch: patch side in pixels")
	fl.IntVar(&f.stride, "stride", 0, "patch: step between patches (default: the patch size)")
	fl.Float64Var(&f.posScale, "pos-scale", 1, "patch: scale of the 2-D position appended to each patch")
	fl.BoolVar(&f.noPosition, "no-position", false, "patch: leave the position out")
	fl.StringVar(&f.weight, "weight", "mass", "patch: weight rule: mass (mean intensity), contrast (std. dev.), signed (mean minus the image's), uniform")
	fl.BoolVar(&f.rgb, "rgb", false, "patch: keep three colour channels instead of the luminance")
	fl.IntVar(&f.ngramMin, "ngram-min", 3, "text: shortest character n-gram")
	fl.IntVar(&f.ngramMax, "ngram-max", 5, "text: longest character n-gram")
	fl.BoolVar(&f.noNGrams, "no-ngrams", false, "text: the word feature only")
	fl.BoolVar(&f.lines, "lines", false, "text: one cloud per non-blank line (ID path:line) instead of per file")
	if fit {
		fl.StringVar(&f.out, "out", "", "model file to write (JSON)")
		fl.IntVar(&f.minDF, "min-df", 2, "text: leave out tokens seen in fewer documents (keeps the model small)")
		return
	}
	fl.StringVar(&f.proj, "proj", "none", "patch: projection of the pixels: none, random (seeded, to --dim) or pca (needs --model)")
	fl.StringVar(&f.model, "model", "", "fitted model from `wpcdb encode fit` (patch PCA, text IDF)")
	fl.StringVar(&f.ingest, "ingest", "", "upsert the clouds into this collection of --data (created with the encoder's dimension if missing) instead of printing them")
	fl.IntVar(&f.batch, "batch", 256, "inputs encoded (and, with --ingest, upserted) per batch")
	fl.IntVar(&f.maxPoints, "max-points", 0, "text: most points per cloud (default 64); tokens: compress clouds to at most this many points by weighted k-means (default: no compression)")
	fl.Float64Var(&f.k1, "k1", 1.2, "text: term frequency saturation")
	fl.StringVar(&f.lengths, "lengths", "", "tokens: .npy (N,) of real tokens per row (the rest is padding)")
	fl.StringVar(&f.weights, "weights", "", "tokens: .npy (N, T) of per-token weights (default 1; not with a head)")
	fl.StringVar(&f.ids, "ids", "", "tokens: text file of IDs, one per line (default: the row number)")
	fl.StringVar(&f.head, "head", "", "tokens: WPSE head as .safetensors with tensors proj (D_in, d), weight (D_in) and optional bias")
	fl.StringVar(&f.headProj, "head-proj", "", "tokens: WPSE head projection, .npy (D_in, d)")
	fl.StringVar(&f.headWeight, "head-weight", "", "tokens: WPSE head weight vector, .npy (D_in,)")
	fl.Float64Var(&f.headBias, "head-bias", 0, "tokens: bias of the head's weight (w = 100·tanh((x·u + b)/100))")
	fl.IntVar(&f.inputDim, "input-dim", 0, "tokens: required feature dimension D_in (default: any)")
	fl.BoolVar(&f.compressRaw, "compress-raw", false, "tokens: compress for a collection with raw (not normalized) points")
	fl.BoolVar(&f.compressSum, "compress-sum", false, "tokens: compress for sum normalization (default mean)")
	fl.BoolVar(&f.compressReport, "compress-report", false, "tokens: measure on stderr how compression changes the similarities of the first 300 clouds")
	fl.StringVar(&f.kernel, "kernel", wpcsim.DefaultKernelSpec, "tokens: kernel of the --compress-report measurement")
}

// encoder is the encoder --encoder names, configured by the flags, and
// its configuration.
func (f *encodeFlags) encoder(cmd *cobra.Command) (encoder.Encoder, encoder.Config, error) {
	cfg, err := f.config(cmd)
	if err != nil {
		return nil, cfg, err
	}
	enc, err := encoder.New(f.name, cfg)
	return enc, cfg, err
}

// config turns the flags into an encoder.Config, leaving unset flags to the
// encoders' defaults.
func (f *encodeFlags) config(cmd *cobra.Command) (encoder.Config, error) {
	set := cmd.Flags().Changed
	var cfg encoder.Config
	cfg.Patch = encoder.PatchOptions{Size: f.size, Stride: f.stride, PosScale: f.posScale, NoPosition: f.noPosition, Proj: f.proj, Dim: f.dim, Seed: f.seed, Weight: f.weight, RGB: f.rgb}
	cfg.Text = encoder.TextOptions{NGramMin: f.ngramMin, NGramMax: f.ngramMax, NoNGrams: f.noNGrams, K1: f.k1, Seed: f.seed, Lines: f.lines, MinDF: f.minDF}
	if set("dim") {
		cfg.Text.Dim = f.dim
	}
	if set("max-points") {
		cfg.Text.MaxPoints = f.maxPoints
	}
	cfg.Tokens = encoder.TokensOptions{
		Lengths: f.lengths, Weights: f.weights, IDs: f.ids, Head: f.head, HeadProj: f.headProj, HeadWeight: f.headWeight,
		HeadBias: f.headBias, InputDim: f.inputDim, MaxPoints: f.maxPoints,
		Compress: encoder.CompressOptions{RawPoints: f.compressRaw, Sum: f.compressSum, Seed: f.seed},
	}
	if f.model != "" {
		m, err := encoder.LoadModel(f.model)
		if err != nil {
			return cfg, err
		}
		cfg.Model = m
		if m.Patch != nil && !set("patch-size") && !set("rgb") {
			// A PCA fixes the patch size and channels it was fitted on.
			cfg.Patch.Size, cfg.Patch.RGB = m.Patch.Size, m.Patch.RGB
		}
	}
	return cfg, nil
}

func (a *app) encodeCommand() *cobra.Command {
	var f encodeFlags
	cmd := &cobra.Command{
		Use:   "encode --encoder patch|text|tokens [flags] INPUT...",
		Short: "Turn images, text or per-token model features into clouds",
		Long: `encode runs a bundled encoder over the INPUT files and prints one JSON cloud per
line ({"id": ..., "weights": [...], "points": [[...]]}), or with --ingest NAME
upserts them into a collection of the embedded database (--data).

  patch   PNG and JPEG files (ID: the path as given) and IDX files of the MNIST
          family, gzipped or not (ID: the image index). Each patch is a point:
          its pixels (raw, --proj random, or --proj pca with a --model from
          'encode fit') and its position times --pos-scale, weighted by --weight.
  text    UTF-8 files, one cloud each or one per line (--lines). Each distinct
          word is a point of seeded hashed word and character n-gram features,
          weighted by IDF (--model from 'encode fit'; 1 without) times saturated
          term frequency; at most --max-points, the heaviest.
  tokens  .npy features (N, T, D_in), float32 or float16, from a model of your
          own; optional --lengths, --weights, --ids; optional WPSE head (--head
          FILE.safetensors, or --head-proj/--head-weight .npy): points x·P,
          weights 100·tanh((x·u+b)/100); optional --max-points M compression by
          signed weighted k-means (--compress-report measures what it costs).`,
		Example: `  wpcdb encode --encoder patch --patch-size 7 --pos-scale 16 train-images-idx3-ubyte.gz > clouds.jsonl
  wpcdb encode --encoder patch --proj random --dim 32 photos/*.jpg --ingest photos
  wpcdb encode fit --encoder text --lines --out idf.json corpus.txt
  wpcdb encode --encoder text --model idf.json --lines corpus.txt --ingest docs
  wpcdb encode --encoder tokens --lengths len.npy --head head.safetensors --max-points 32 feats.npy`,
		Args: inputArgs("encode needs at least one INPUT file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.name == "" {
				return usageError{fmt.Errorf("encode: --encoder is required (%s)", strings.Join(encoder.Names(), ", "))}
			}
			if f.batch <= 0 {
				return usageError{fmt.Errorf("encode: --batch must be positive, got %d", f.batch)}
			}
			enc, cfg, err := f.encoder(cmd)
			if err != nil {
				return err
			}
			if f.compressReport {
				if err := a.reportCompression(cmd.Context(), &f, cfg, args); err != nil {
					return err
				}
			}
			if f.ingest == "" {
				w := bufio.NewWriterSize(a.stdout, 1<<20)
				var buf []byte
				err := runEncode(cmd.Context(), enc, args, f.batch, func(recs []encodedCloud) error {
					for _, r := range recs {
						buf = cloudjson.AppendJSON(buf[:0], cloudjson.Record{ID: r.id, Cloud: r.cloud})
						buf = append(buf, '\n')
						if _, err := w.Write(buf); err != nil {
							return err
						}
					}
					return nil
				})
				if ferr := w.Flush(); err == nil {
					err = ferr
				}
				return err
			}
			return a.withBackend(func(b backend) error { return a.encodeIngest(cmd.Context(), b, enc, &f, args) })
		},
	}
	f.register(cmd, false)
	cmd.AddCommand(a.encodeFitCommand())
	return cmd
}

func (a *app) encodeFitCommand() *cobra.Command {
	var f encodeFlags
	cmd := &cobra.Command{
		Use:   "fit --encoder patch|text --out MODEL.json [flags] INPUT...",
		Short: "Fit an encoder's fitted part: the PCA of patches, or the IDF of a corpus",
		Long: `fit reads INPUT files as encode would and writes a small JSON model for
'encode --model': for patch, the PCA of every patch (before projection; --dim
components, default 16; pass the same --patch-size and --rgb); for text, the
document frequency of every word (a document is a file, or a line with --lines),
leaving out words seen in fewer than --min-df documents.`,
		Args: inputArgs("encode fit needs at least one INPUT file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.out == "" {
				return usageError{errors.New("encode fit: --out MODEL.json is required")}
			}
			f.proj = "none" // the fit is of the pixels themselves
			enc, _, err := f.encoder(cmd)
			if err != nil {
				return err
			}
			fe, ok := enc.(encoder.Fittable)
			if !ok {
				return usageError{fmt.Errorf("encode fit: encoder %q has nothing to fit (patch and text do)", f.name)}
			}
			fitter, err := fe.NewFitter()
			if err != nil {
				return err
			}
			n := 0
			for _, path := range args {
				err := enc.Read(path, func(in encoder.Input) error {
					if err := cmd.Context().Err(); err != nil {
						return err
					}
					n++
					if err := fitter.Add(in); err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			m, err := fitter.Model()
			if err != nil {
				return err
			}
			if err := m.Save(f.out); err != nil {
				return err
			}
			if a.g.json {
				return a.printJSON(map[string]any{"model": f.out, "encoder": f.name, "inputs": n})
			}
			_, err = fmt.Fprintf(a.stdout, "fitted %s model on %d inputs: %s\n", f.name, n, f.out)
			return err
		},
	}
	f.register(cmd, true)
	return cmd
}

// encodedCloud is one encoder output.
type encodedCloud struct {
	id    string
	cloud wpcsim.Cloud
}

// runEncode reads the inputs of every path, encodes them in batches of n
// (in parallel within a batch) and hands each batch to emit, in input order.
// Errors name the file and the input.
func runEncode(ctx context.Context, enc encoder.Encoder, paths []string, n int, emit func([]encodedCloud) error) error {
	var ins []encoder.Input
	flush := func(path string) error {
		if len(ins) == 0 {
			return nil
		}
		clouds, err := enc.EncodeBatch(ins)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out := make([]encodedCloud, len(ins))
		for i := range ins {
			out[i] = encodedCloud{id: ins[i].ID, cloud: clouds[i]}
		}
		ins = ins[:0]
		return emit(out)
	}
	for _, path := range paths {
		err := enc.Read(path, func(in encoder.Input) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			ins = append(ins, in)
			if len(ins) >= n {
				return flush(path)
			}
			return nil
		})
		if err == nil {
			err = flush(path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// encodeIngest streams the clouds into a collection, embedded or on
// --addr's server, through the ingest pipeline (encoding on one goroutine
// while the previous batch is committed), creating the collection
// (default similarity, the clouds' dimension) if it does not exist.
func (a *app) encodeIngest(ctx context.Context, b backend, enc encoder.Encoder, f *encodeFlags, paths []string) error {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan ingest.Batch, 1)
	go func() {
		defer close(batches)
		n := 0
		err := runEncode(ctx, enc, paths, f.batch, func(recs []encodedCloud) error {
			var bt ingest.Batch
			for _, r := range recs {
				n++
				bt.Items = append(bt.Items, wpcdb.Item{ID: r.id, Cloud: r.cloud})
				bt.Pos = append(bt.Pos, n)
			}
			if !ingest.Send(ctx, batches, bt) {
				return ctx.Err()
			}
			return nil
		})
		if err != nil {
			ingest.Send(ctx, batches, ingest.Batch{Err: err})
		}
	}()
	t := &encodeTarget{a: a, b: b, name: f.ingest, dim: enc.Dim()}
	st, err := ingest.Commit(ctx, t, batches, ingest.Options{Unit: "cloud", Log: func(msg string) { fmt.Fprintln(a.stderr, msg) }})
	if t.t != nil {
		// Ends the load: the first stage is built or calibrated.
		if cerr := t.t.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	return a.printIngestSummary(st, start)
}

// encodeTarget opens the collection on the first batch, creating it with
// the clouds' dimension when it does not exist.
type encodeTarget struct {
	a    *app
	b    backend
	name string
	dim  int // the encoder's, 0: the first cloud's
	t    ingestTarget
}

func (e *encodeTarget) UpsertWith(ctx context.Context, items []wpcdb.Item, opts wpcdb.UpsertOptions) (wpcdb.UpsertResult, error) {
	if e.t == nil {
		t, err := e.b.Ingest(ctx, e.name)
		if errors.Is(err, wpcdb.ErrCollectionNotFound) || status.Code(err) == codes.NotFound {
			dim := e.dim
			if dim == 0 {
				dim = items[0].Cloud.Dim
			}
			cc := wpcdb.CollectionConfig{Dim: dim, MaxPoints: collconfig.DefaultMaxPoints}
			if _, err := e.b.CreateCollection(ctx, e.name, cc, nil); err != nil {
				return wpcdb.UpsertResult{}, err
			}
			fmt.Fprintf(e.a.stderr, "wpcdb: created collection %q (dim %d, default similarity; see 'collection describe')\n", e.name, dim)
			t, err = e.b.Ingest(ctx, e.name)
		}
		if err != nil {
			return wpcdb.UpsertResult{}, err
		}
		e.t = t
	}
	return e.t.UpsertWith(ctx, items, opts)
}

// reportCompression encodes up to 300 inputs with and without compression
// and prints how much the similarities moved.
func (a *app) reportCompression(ctx context.Context, f *encodeFlags, cfg encoder.Config, paths []string) error {
	if f.name != "tokens" || f.maxPoints <= 0 {
		return usageError{errors.New("encode: --compress-report goes with --encoder tokens --max-points M")}
	}
	k, err := wpcsim.ParseKernel(f.kernel)
	if err != nil {
		return err
	}
	norm := wpcsim.NormMean
	if f.compressSum {
		norm = wpcsim.NormSum
	}
	sim, err := wpcsim.New(wpcsim.Config{Kernel: k, Norm: norm, RawPoints: f.compressRaw})
	if err != nil {
		return err
	}
	full := cfg
	full.Tokens.MaxPoints = 0
	encFull, err := encoder.New("tokens", full)
	if err != nil {
		return err
	}
	var orig []wpcsim.Cloud
	errEnough := errors.New("enough")
	for _, p := range paths {
		err := runEncode(ctx, encFull, []string{p}, 300, func(recs []encodedCloud) error {
			for _, r := range recs {
				orig = append(orig, r.cloud)
			}
			if len(orig) >= 300 {
				return errEnough
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			break
		}
		if err != nil {
			return err
		}
	}
	comp := make([]wpcsim.Cloud, len(orig))
	for i, c := range orig {
		if c.Len() <= f.maxPoints {
			comp[i] = c
			continue
		}
		if comp[i], err = encoder.Compress(c, f.maxPoints, cfg.Tokens.Compress); err != nil {
			return fmt.Errorf("cloud %d: %w", i, err)
		}
	}
	rep, err := encoder.MeasureCompression(sim, orig, comp)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stderr, "wpcdb: compression to ≤ %d points under %s (%s, %s points) on %d clouds: %.1f → %.1f points; mean |Δg| %.4f of RMS g (max %.4f); top-10 overlap %.3f\n",
		f.maxPoints, k, norm, map[bool]string{true: "raw", false: "normalized"}[f.compressRaw], rep.Clouds, rep.PointsBefore, rep.PointsAfter, rep.RelErr, rep.MaxRelErr, rep.Top10)
	return err
}
