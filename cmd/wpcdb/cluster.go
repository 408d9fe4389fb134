package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect a cluster of wpcdb nodes coordinated by etcd, move and replace replicas"}
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

	var from, to string
	var timeout time.Duration
	move := &cobra.Command{
		Use:   "move COLLECTION SHARD --from NODE --to NODE --cluster ENDPOINTS",
		Short: "Move a replica of a replicated shard to another node, while the shard keeps taking writes",
		Long: "Move a replica of a replicated shard (a Raft group) from one node to a live node that holds none: the new replica\n" +
			"joins as a Raft learner, catches up from a snapshot or the log, is promoted, the old replica is removed (the leadership\n" +
			"moves first when it leads) and the shard map records the new replicas (epoch raised). Waits until done (--timeout).",
		Args: exactArgs(2, "COLLECTION SHARD"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := strconv.Atoi(args[1])
			if err != nil || k < 0 {
				return usageError{fmt.Errorf("cluster move: SHARD must be a shard number, got %q", args[1])}
			}
			if from == "" || to == "" {
				return usageError{errors.New("cluster move: --from and --to are required")}
			}
			c, err := a.clusterClient(cmd.Context(), "cluster move", endpoints)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			s, err := c.Move(ctx, args[0], k, from, to)
			if err != nil {
				return err
			}
			if a.g.json {
				return a.printJSON(s)
			}
			fmt.Fprintf(a.stdout, "shard %d of %s moved from %s to %s: replicas %s, leader %s, epoch %d\n", k, args[0], from, to, strings.Join(s.Replicas, ","), s.Leader, s.Epoch)
			return nil
		},
	}
	move.Flags().StringVar(&endpoints, "cluster", "", "etcd endpoints of the cluster, comma-separated (http://127.0.0.1:2379)")
	move.Flags().StringVar(&from, "from", "", "the node whose replica moves")
	move.Flags().StringVar(&to, "to", "", "the live node it moves to (not already a replica of the shard)")
	move.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the move (it goes on after)")
	cmd.AddCommand(move)

	replace := &cobra.Command{
		Use:   "replace NODE --cluster ENDPOINTS",
		Short: "Move every replica of a dead node to live nodes (never automatic)",
		Long: "Move every replica a node that is not live holds to live nodes (per shard the live non-replica holding the fewest\n" +
			"replicas), one shard after another, as `cluster move` does. Prints one line per shard; exits non-zero if any failed.",
		Args: exactArgs(1, "NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.clusterClient(cmd.Context(), "cluster replace", endpoints)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rs, err := c.Replace(ctx, args[0])
			var failed int
			for _, r := range rs {
				if r.Err != nil {
					failed++
					fmt.Fprintf(a.stdout, "%s shard %d: not replaced: %v\n", r.Collection, r.Shard, r.Err)
				} else {
					fmt.Fprintf(a.stdout, "%s shard %d: %s → %s\n", r.Collection, r.Shard, args[0], r.To)
				}
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("cluster replace: %d of %d shards not replaced", failed, len(rs))
			}
			fmt.Fprintf(a.stdout, "%d replicas of %s replaced\n", len(rs), args[0])
			return nil
		},
	}
	replace.Flags().StringVar(&endpoints, "cluster", "", "etcd endpoints of the cluster, comma-separated (http://127.0.0.1:2379)")
	replace.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for the moves (one in progress goes on after)")
	cmd.AddCommand(replace)
	return cmd
}
