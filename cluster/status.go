package cluster

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteStatus prints the view: the live nodes, then every sharded
// collection's shards with their replicas, leader, epoch, the leader's
// Raft term (0: one replica, or no election yet) and a state: ok, leader
// down, or how many replicas are down. Lag is not printed: the replicas'
// applied indexes are not in etcd (each node has them, Replicas.Status).
func WriteStatus(w io.Writer, v *View) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	nodes := v.Nodes()
	fmt.Fprintf(tw, "NODE\tADDRESS\n")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\n", n.ID, n.Addr)
	}
	fmt.Fprintf(tw, "\nCOLLECTION\tSHARD\tREPLICAS\tLEADER\tEPOCH\tTERM\tSTATE\n")
	for _, m := range v.Collections() {
		for _, s := range m.Shards {
			down := 0
			for _, id := range s.Replicas {
				if _, ok := v.Node(id); !ok {
					down++
				}
			}
			state := "ok"
			if _, ok := v.Node(s.Leader); !ok {
				state = "leader down"
			} else if down > 0 {
				state = fmt.Sprintf("%d of %d replicas down", down, len(s.Replicas))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\n", m.Name, s.Index, strings.Join(s.Replicas, ","), s.Leader, s.Epoch, s.Term, state)
		}
	}
	return tw.Flush()
}
