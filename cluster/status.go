package cluster

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteStatus prints the view: the live nodes, then every sharded
// collection's shards with their replicas, leader, epoch and whether the
// leader is live. Lag is not printed: with one replica per shard there is
// none yet.
func WriteStatus(w io.Writer, v *View) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	nodes := v.Nodes()
	fmt.Fprintf(tw, "NODE\tADDRESS\n")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\n", n.ID, n.Addr)
	}
	fmt.Fprintf(tw, "\nCOLLECTION\tSHARD\tREPLICAS\tLEADER\tEPOCH\tSTATE\n")
	for _, m := range v.Collections() {
		for _, s := range m.Shards {
			state := "ok"
			if _, ok := v.Node(s.Leader); !ok {
				state = "leader down"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", m.Name, s.Index, strings.Join(s.Replicas, ","), s.Leader, s.Epoch, state)
		}
	}
	return tw.Flush()
}
