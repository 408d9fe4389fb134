// A spike (not built with the module: testdata; run with
// `cd cluster/testdata/raftspike && go run . -n 5000 -lib etcd`):
// commit latency of one 4 KiB proposal on a 3-replica group,
// in-process (in-memory log and transport for both libraries), sequential
// proposals, so the figure is the consensus round-trip plus library overhead.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	hraft "github.com/hashicorp/raft"
	eraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(name string, lat []time.Duration, wall, cpuT time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	n := len(lat)
	fmt.Printf("%-10s n=%d p50=%v p99=%v wall=%v cpu/op=%v\n", name, n, lat[n/2], lat[n*99/100], wall.Round(time.Millisecond), (cpuT / time.Duration(n)).Round(time.Microsecond))
}

// ---- hashicorp/raft
type fsm struct{ n int }

func (f *fsm) Apply(*hraft.Log) any                 { f.n++; return nil }
func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) { return nil, fmt.Errorf("no") }
func (f *fsm) Restore(io.ReadCloser) error          { return nil }

func hashicorp(n int, payload []byte) {
	var trans [3]*hraft.InmemTransport
	var addrs [3]hraft.ServerAddress
	for i := range trans {
		addrs[i], trans[i] = hraft.NewInmemTransport("")
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	var cfg hraft.Configuration
	for i := range trans {
		cfg.Servers = append(cfg.Servers, hraft.Server{ID: hraft.ServerID(fmt.Sprint(i)), Address: addrs[i]})
	}
	var rs [3]*hraft.Raft
	for i := range rs {
		c := hraft.DefaultConfig()
		c.LocalID = hraft.ServerID(fmt.Sprint(i))
		c.LogOutput = io.Discard
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
		st := hraft.NewInmemStore()
		hraft.BootstrapCluster(c, st, st, hraft.NewInmemSnapshotStore(), trans[i], cfg)
		r, err := hraft.NewRaft(c, &fsm{}, st, st, hraft.NewInmemSnapshotStore(), trans[i])
		if err != nil {
			panic(err)
		}
		rs[i] = r
	}
	var leader *hraft.Raft
	for leader == nil {
		time.Sleep(10 * time.Millisecond)
		for _, r := range rs {
			if r.State() == hraft.Leader {
				leader = r
			}
		}
	}
	lat := make([]time.Duration, 0, n)
	c0, w0 := cpu(), time.Now()
	for range n {
		t := time.Now()
		if err := leader.Apply(payload, 5*time.Second).Error(); err != nil {
			panic(err)
		}
		lat = append(lat, time.Since(t))
	}
	report("hashicorp", lat, time.Since(w0), cpu()-c0)
	for _, r := range rs {
		r.Shutdown().Error()
	}
}

// ---- etcd raft: the loop an application writes (raftexample's shape).
type enode struct {
	id      uint64
	n       eraft.Node
	st      *eraft.MemoryStorage
	applied chan uint64 // committed normal entries, by index
}

func etcd(n int, payload []byte) {
	peers := []eraft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	nodes := map[uint64]*enode{}
	var mu sync.Mutex
	inbox := map[uint64]chan *raftpb.Message{}
	for id := uint64(1); id <= 3; id++ {
		inbox[id] = make(chan *raftpb.Message, 4096)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for id := uint64(1); id <= 3; id++ {
		st := eraft.NewMemoryStorage()
		c := &eraft.Config{ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: &eraft.DefaultLogger{Logger: nil}}
		c.Logger = discard{}
		en := &enode{id: id, n: eraft.StartNode(c, peers), st: st, applied: make(chan uint64, 4096)}
		mu.Lock()
		nodes[id] = en
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					en.n.Stop()
					return
				case <-tick.C:
					en.n.Tick()
				case m := <-inbox[en.id]:
					en.n.Step(ctx, m)
				case rd := <-en.n.Ready():
					if !eraft.IsEmptyHardState(rd.HardState) {
						en.st.SetHardState(rd.HardState)
					}
					en.st.Append(rd.Entries)
					for _, m := range rd.Messages {
						select {
						case inbox[m.GetTo()] <- m:
						default:
						}
					}
					for _, e := range rd.CommittedEntries {
						switch e.GetType() {
						case raftpb.EntryConfChange:
							var cc raftpb.ConfChange
							proto.Unmarshal(e.GetData(), &cc)
							en.n.ApplyConfChange(&cc)
						case raftpb.EntryNormal:
							if len(e.GetData()) > 0 {
								select {
								case en.applied <- e.GetIndex():
								default:
								}
							}
						}
					}
					en.n.Advance()
				}
			}
		}()
	}
	var leader *enode
	for leader == nil {
		time.Sleep(10 * time.Millisecond)
		for _, en := range nodes {
			if en.n.Status().RaftState == eraft.StateLeader {
				leader = en
			}
		}
	}
	lat := make([]time.Duration, 0, n)
	c0, w0 := cpu(), time.Now()
	for range n {
		t := time.Now()
		if err := leader.n.Propose(ctx, payload); err != nil {
			panic(err)
		}
		<-leader.applied
		lat = append(lat, time.Since(t))
	}
	report("etcd-raft", lat, time.Since(w0), cpu()-c0)
	cancel()
	wg.Wait()
}

type discard struct{}

func (discard) Debug(...any)            {}
func (discard) Debugf(string, ...any)   {}
func (discard) Error(...any)            {}
func (discard) Errorf(string, ...any)   {}
func (discard) Info(...any)             {}
func (discard) Infof(string, ...any)    {}
func (discard) Warning(...any)          {}
func (discard) Warningf(string, ...any) {}
func (discard) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (discard) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (discard) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discard) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }

func main() {
	n := flag.Int("n", 2000, "proposals")
	size := flag.Int("size", 4096, "bytes per proposal")
	which := flag.String("lib", "both", "hashicorp, etcd or both")
	flag.Parse()
	payload := make([]byte, *size)
	if *which != "etcd" {
		hashicorp(*n, payload)
	}
	if *which != "hashicorp" {
		etcd(*n, payload)
	}
	os.Exit(0)
}
