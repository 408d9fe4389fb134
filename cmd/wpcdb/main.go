// Command wpcdb is the one binary of wpcdb: the database server (serve; with
// --cluster a node of an etcd-coordinated cluster, inspected by cluster
// status), its client and embedded front end
// (collection, ingest, import, get, count, scroll, update-attrs, delete,
// search, rerank, snapshot, restore), and the tools around it (sim, encode,
// bench, demo, version). Every data command runs against the --data folder
// or, with --addr, a server, through one backend interface (backend.go,
// backend_remote.go), so both modes print the same.
//
// The commands are thin: they turn flags into the options of the package
// that does the work (ingest.Commit for ingest, encode --ingest and demo,
// ingest.ImportNPY for import, bench.Run, bench.RunFMNIST and bench.Load
// for bench, server.New for serve) and print what it returns. Errors are printed once, as
// "wpcdb: <message>"; a command line that cannot run exits with 2, any
// other failure with 1.
//
// Global flags are persistent: they may come before or after the command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the root's persistent flags.
type globals struct {
	data      string
	addr      string
	token     string
	tokenFile string
	tls       bool
	tlsCA     string
	insecure  bool
	json      bool
	// consistency of reads through --addr: "" or "strong".
	consistency string
	// The embedded database's caches in MiB (0: the defaults; negative:
	// none): stored clouds, and a maxsim point index's resident postings.
	cloudCacheMB, pointCacheMB int64
}

// app is one invocation: its flags and streams.
type app struct {
	g      globals
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// log receives the embedded database's messages: serve's logger, else
	// warnings and errors on stderr (dbLogger).
	log *slog.Logger
}

// cacheBytes is a --*-cache-mb flag as wpcdb.Options wants it: 0 the
// default, negative none, else bytes.
func cacheBytes(mb int64) int64 {
	if mb < 0 {
		return -1
	}
	return min(mb, 1<<40) << 20
}

// dbLogger is the logger of the embedded database: a.log when set (serve),
// else one printing warnings and errors on stderr without timestamps (a
// saved index rebuilt after damage, a calibration that failed), which a
// nil logger had dropped. Pebble's own messages are left out: the one a
// command sees (corrupt data) is its error already, and Pebble's report of
// it carries a stack trace of 60 lines.
func (a *app) dbLogger() *slog.Logger {
	if a.log != nil {
		return a.log
	}
	return slog.New(cliDBHandler{slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
			if len(groups) == 0 && at.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return at
		}})})
}

// cliDBHandler drops the records of component pebble (see dbLogger).
type cliDBHandler struct{ slog.Handler }

func (h cliDBHandler) Handle(ctx context.Context, r slog.Record) error {
	pebble := false
	r.Attrs(func(at slog.Attr) bool {
		pebble = at.Key == "component" && at.Value.String() == "pebble"
		return !pebble
	})
	if pebble {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h cliDBHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return cliDBHandler{h.Handler.WithAttrs(as)}
}

func (h cliDBHandler) WithGroup(name string) slog.Handler {
	return cliDBHandler{h.Handler.WithGroup(name)}
}

// run executes the command line and returns the process exit code. Errors
// are printed on stderr as "wpcdb: <message>"; nothing is printed on stdout
// by a failing command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		// A long argument (a path, an ID, a spec) that the error quotes
		// is cut, as the commands cut the long inputs they read.
		inputs := slices.Clone(args)
		for _, a := range args {
			if _, v, ok := strings.Cut(a, "="); ok {
				inputs = append(inputs, v)
			}
		}
		err = wpcerr.CutPaths(err, inputs...)
		fmt.Fprintf(stderr, "wpcdb: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks a command line that cannot run (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "wpcdb",
		Short: "A database for weighted point clouds",
		Long: `wpcdb stores weighted point clouds — sets of (weight, vector) pairs, as produced by
multimodal encoders — and searches them by the exact kernel similarity of the
Weighted Point Cloud Embedding paper, pruned by a first-stage index.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.g.data, "data", "./wpcdb-data", "data directory of the embedded database")
	pf.StringVar(&a.g.addr, "addr", "", "HOST:PORT of a wpcdb server; when set, commands run against it")
	pf.StringVar(&a.g.token, "token", "", "bearer token for the server (visible in ps: prefer --token-file or $WPCDB_TOKEN)")
	pf.StringVar(&a.g.tokenFile, "token-file", "", "file holding the bearer token (instead of --token)")
	pf.BoolVar(&a.g.tls, "tls", false, "connect to --addr with TLS verified against the system's CA roots")
	pf.StringVar(&a.g.tlsCA, "tls-ca", "", "PEM CA certificate: connect to --addr with TLS verified against it")
	pf.BoolVar(&a.g.insecure, "insecure", false, "allow sending a token in plaintext to a non-loopback --addr")
	pf.StringVar(&a.g.consistency, "consistency", "", "reads through --addr of a cluster's replicated collection: strong reads each shard on its Raft leader after a read index (default: any live replica, leader first); an embedded database and a single server are always strong")
	pf.BoolVar(&a.g.json, "json", false, "print JSON instead of text")
	pf.Int64Var(&a.g.cloudCacheMB, "cloud-cache-mb", 0, "embedded database (and serve, bench): MiB of stored clouds cached for the rerank (0: 256; negative: none)")
	pf.Int64Var(&a.g.pointCacheMB, "point-cache-mb", 0, "embedded database (and serve, bench): MiB of a maxsim point index's posting lists kept in memory, the rest read from disk by every search (0: 256; negative: none)")
	root.AddCommand(a.simCommand(), a.collectionCommand(), a.ingestCommand(), a.importCommand(), a.getCommand(), a.countCommand(), a.scrollCommand(), a.updateAttrsCommand(), a.deleteCommand(), a.benchCommand(), a.searchCommand(), a.rerankCommand(), a.demoCommand(), a.serveCommand(), a.clusterCommand(), a.encodeCommand(), a.snapshotCommand(), a.restoreCommand(), a.versionCommand())
	return root
}
