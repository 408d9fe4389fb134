package cluster

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteStatus prints the view: the live nodes, then every sharded
// collection's shards with their replicas, leader, epoch, the leader's
// Raft term (0: one replica, or no election yet), the lag (how many log
// entries the live replica furthest behind has applied fewer than the
// one furthest ahead, as the replicas last published them, about every
// second; "-" with one replica or until all have published) and a state:
// ok, leader down, or how many replicas are down, and a move in progress
// (", moving FROM→TO").
func WriteStatus(w io.Writer, v *View) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	nodes := v.Nodes()
	fmt.Fprintf(tw, "NODE\tADDRESS\n")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\n", n.ID, n.Addr)
	}
	fmt.Fprintf(tw, "\nCOLLECTION\tSHARD\tREPLICAS\tLEADER\tEPOCH\tTERM\tLAG\tSTATE\n")
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
			if s.Move != nil {
				state += fmt.Sprintf(", moving %s→%s", s.Move.From, s.Move.To)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", m.Name, s.Index, strings.Join(s.Replicas, ","), s.Leader, s.Epoch, s.Term, lag(v, m, s), state)
		}
	}
	return tw.Flush()
}

// lag is the spread of the live replicas' published applied indexes.
func lag(v *View, m ShardMap, s Shard) string {
	if len(s.Replicas) < 2 {
		return "-"
	}
	var lo, hi uint64
	n := 0
	for _, id := range s.Replicas {
		if _, ok := v.Node(id); !ok {
			continue
		}
		a, ok := v.Applied(id, ShardName(m.Name, s.Index))
		if !ok {
			return "-"
		}
		if n == 0 || a < lo {
			lo = a
		}
		hi = max(hi, a)
		n++
	}
	if n == 0 {
		return "-"
	}
	return strconv.FormatUint(hi-lo, 10)
}
