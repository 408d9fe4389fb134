package main

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb/cluster"
)

// clusterEndpoints splits --cluster's comma-separated etcd endpoints.
func clusterEndpoints(flag, s string) ([]string, error) {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, usageError{errors.New(flag + ": --cluster needs etcd endpoints (http://HOST:PORT,...)")}
	}
	return out, nil
}

// clusterClient connects to the cluster of --cluster's etcd endpoints.
func (a *app) clusterClient(ctx context.Context, cmd, endpoints string) (*cluster.Client, error) {
	eps, err := clusterEndpoints(cmd, endpoints)
	if err != nil {
		return nil, err
	}
	token, err := a.flagToken(cmd)
	if err != nil {
		return nil, err
	}
	return cluster.Connect(ctx, cluster.Options{Endpoints: eps, Token: token})
}

func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect a cluster of wpcdb nodes coordinated by etcd"}
	var endpoints string
	status := &cobra.Command{
		Use:   "status --cluster ENDPOINTS",
		Short: "Print the live nodes and every sharded collection's shards, replicas, leaders and epochs",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.clusterClient(cmd.Context(), "cluster status", endpoints)
			if err != nil {
				return err
			}
			defer c.Close()
			if a.g.json {
				return a.printJSON(map[string]any{"nodes": c.View().Nodes(), "collections": c.View().Collections()})
			}
			return cluster.WriteStatus(a.stdout, c.View())
		},
	}
	status.Flags().StringVar(&endpoints, "cluster", "", "etcd endpoints of the cluster, comma-separated (http://127.0.0.1:2379)")
	cmd.AddCommand(status)
	return cmd
}
