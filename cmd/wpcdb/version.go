package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; otherwise the module's version.
var version = ""

// buildVersion returns the version and the VCS revision the binary was
// built from ("" when unknown).
func buildVersion() (v, revision string) {
	v = version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				if s.Value == "true" && revision != "" {
					revision += "-dirty"
				}
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return v, revision
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  exactArgs(0, ""),
		Long: `version prints this binary's version; with --addr also the server's, which
every response carries in its header wpcdb-version.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, rev := buildVersion()
			server := ""
			if a.g.addr != "" {
				var err error
				if server, err = a.serverVersion(cmd.Context()); err != nil {
					return err
				}
			}
			if a.g.json {
				out := map[string]string{"version": v, "revision": rev, "go": runtime.Version()}
				if a.g.addr != "" {
					out["server_version"] = server
				}
				return a.printJSON(out)
			}
			line := "wpcdb " + v + " (" + runtime.Version()
			if rev != "" {
				line += ", " + rev
			}
			if _, err := fmt.Fprintln(a.stdout, line+")"); err != nil || a.g.addr == "" {
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "server %s: wpcdb %s\n", a.g.addr, server)
			return err
		},
	}
}

// flagToken returns the bearer token given by --token or --token-file
// (not both); "" when neither.
func (a *app) flagToken(cmd string) (string, error) {
	token := a.g.token
	if a.g.tokenFile == "" {
		return token, nil
	}
	if token != "" {
		return "", usageError{fmt.Errorf("%s: give --token or --token-file, not both", cmd)}
	}
	b, err := os.ReadFile(a.g.tokenFile)
	if err != nil {
		return "", err
	}
	if token = strings.TrimSpace(string(b)); token == "" {
		return "", fmt.Errorf("%s: --token-file %s is empty", cmd, a.g.tokenFile)
	}
	return token, nil
}

// clientToken is the token a client sends: --token, --token-file, or
// else $WPCDB_TOKEN. A token never goes in plaintext to an address off
// this machine unless --insecure says so.
func (a *app) clientToken() (string, error) {
	token, err := a.flagToken("--addr")
	if err != nil {
		return "", err
	}
	if token == "" {
		token = strings.TrimSpace(os.Getenv("WPCDB_TOKEN"))
	}
	if token != "" && !a.g.tls && a.g.tlsCA == "" && !a.g.insecure && !isLoopback(a.g.addr) {
		return "", usageError{fmt.Errorf("--addr %s: refusing to send the bearer token in plaintext off this machine; use --tls or --tls-ca (or --insecure)", a.g.addr)}
	}
	return token, nil
}

var errNoAddr = errors.New("--tls and --tls-ca go with --addr")

// serverVersion asks --addr's health service, which needs no token, and
// reads the version from the response header.
func (a *app) serverVersion(ctx context.Context) (string, error) {
	r, err := a.dial()
	if err != nil {
		return "", err
	}
	defer r.Close()
	var hdr metadata.MD
	if _, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil {
		return "", err
	}
	if v := hdr.Get("wpcdb-version"); len(v) == 1 {
		return v[0], nil
	}
	return "unknown (older than wpcdb-version headers)", nil
}
