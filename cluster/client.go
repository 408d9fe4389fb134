package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wpcdb/wpcdb/internal/recvhold"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// Options configure a Client (and a Node, which is one).
type Options struct {
	// Endpoints are etcd's client URLs ("http://127.0.0.1:2379").
	Endpoints []string
	// Prefix is the key prefix of the cluster's records; "" means
	// DefaultPrefix. Clusters sharing an etcd differ by prefix.
	Prefix string
	// DialTimeout bounds connecting to etcd; 0 means 5 s.
	DialTimeout time.Duration
	// Token is the bearer token sent with every forwarded call.
	Token string
	// ShardTimeout bounds each shard's part of a request (within the
	// request's own deadline); 0: only the request's deadline.
	ShardTimeout time.Duration
	// Replicas is the number of replicas of each shard of a collection
	// created through the service (CreateCollection has no such field);
	// 0 means 1. The CLI's --replicas calls Client.CreateCollection.
	Replicas int
	// Logger receives membership and watch events; nil discards.
	Logger *slog.Logger
}

// Client reads the cluster's records, keeps them current with a watch, and
// calls the nodes' gRPC services. Safe for concurrent use.
type Client struct {
	opts   Options
	prefix string
	etcd   *clientv3.Client
	view   *View
	log    *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by address
}

// Connect connects to etcd, loads the cluster's records and watches them.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("cluster: no etcd endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: opts.Endpoints, DialTimeout: opts.DialTimeout, Context: context.WithoutCancel(ctx)})
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Client{opts: opts, prefix: opts.Prefix, etcd: cli, view: newView(), log: log, ctx: cctx, cancel: cancel, conns: map[string]*grpc.ClientConn{}}
	lctx, lcancel := context.WithTimeout(ctx, opts.DialTimeout)
	rev, err := c.load(lctx)
	lcancel()
	if err != nil {
		cancel()
		cli.Close()
		return nil, fmt.Errorf("cluster: loading the catalog from etcd %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	c.wg.Add(1)
	go c.watch(rev)
	return c, nil
}

// View is the client's current copy of the cluster's records.
func (c *Client) View() *View { return c.view }

// freshCollection reads a sharded collection's record from etcd (a
// linearizable read), not from the view; false when there is none.
func (c *Client) freshCollection(ctx context.Context, name string) (ShardMap, bool, error) {
	resp, err := c.etcd.Get(ctx, c.prefix+collectionsDir+name)
	if err != nil || len(resp.Kvs) == 0 {
		return ShardMap{}, false, err
	}
	m, err := decodeShardMap(resp.Kvs[0].Value)
	return m, err == nil, err
}

// load reads every record and replaces the view's; it returns the revision
// read.
func (c *Client) load(ctx context.Context) (int64, error) {
	resp, err := c.etcd.Get(ctx, c.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	nodes := map[string]NodeInfo{}
	colls := map[string]ShardMap{}
	applied := map[string]map[string]uint64{}
	for _, kv := range resp.Kvs {
		c.decode(string(kv.Key), kv.Value, nodes, colls, applied)
	}
	c.view.update(func() { c.view.nodes, c.view.colls, c.view.applied = nodes, colls, applied })
	return resp.Header.Revision, nil
}

// decode files one record into nodes, colls or applied; a value of nil
// deletes.
func (c *Client) decode(key string, val []byte, nodes map[string]NodeInfo, colls map[string]ShardMap, applied map[string]map[string]uint64) {
	rel := strings.TrimPrefix(key, c.prefix)
	switch {
	case strings.HasPrefix(rel, appliedDir):
		id := strings.TrimPrefix(rel, appliedDir)
		if val == nil {
			delete(applied, id)
			return
		}
		var a map[string]uint64
		if err := json.Unmarshal(val, &a); err != nil {
			c.log.Warn("cluster: unreadable applied record", "key", key, "err", err)
			return
		}
		applied[id] = a
	case strings.HasPrefix(rel, nodesDir):
		id := strings.TrimPrefix(rel, nodesDir)
		if val == nil {
			delete(nodes, id)
			return
		}
		var n NodeInfo
		if err := json.Unmarshal(val, &n); err != nil {
			c.log.Warn("cluster: unreadable node record", "key", key, "err", err)
			return
		}
		nodes[id] = n
	case strings.HasPrefix(rel, collectionsDir):
		name := strings.TrimPrefix(rel, collectionsDir)
		if val == nil {
			delete(colls, name)
			return
		}
		m, err := decodeShardMap(val)
		if err != nil {
			c.log.Warn("cluster: unreadable catalog record", "key", key, "err", err)
			return
		}
		colls[name] = m
	}
}

// watch applies every change after rev to the view until Close; when the
// watch breaks (compaction, lost connection) it reloads and watches again.
func (c *Client) watch(rev int64) {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		wch := c.etcd.Watch(clientv3.WithRequireLeader(c.ctx), c.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				c.log.Warn("cluster: watch", "err", err)
				break
			}
			c.view.update(func() {
				for _, ev := range resp.Events {
					val := ev.Kv.Value
					if ev.Type == clientv3.EventTypeDelete {
						val = nil
					}
					c.decode(string(ev.Kv.Key), val, c.view.nodes, c.view.colls, c.view.applied)
				}
			})
			rev = resp.Header.Revision
		}
		if c.ctx.Err() != nil {
			return
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
		r, err := c.load(ctx)
		cancel()
		if err == nil {
			rev = r
		}
	}
}

// conn returns a client of a node's WPCDBService.
func (c *Client) conn(addr string) (pb.WPCDBServiceClient, error) {
	cc, err := c.cc(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewWPCDBServiceClient(cc), nil
}

// cc returns the (shared) connection to a node's gRPC address. Reconnects
// back off at most half a second (gRPC's default grows to two minutes),
// so a node that restarts is reached again within that (until then calls
// to it fail at once as Unavailable, as while it was down).
func (c *Client) cc(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	if c.conns == nil {
		return nil, errors.New("cluster: client closed")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1 << 30)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond}, MinConnectTimeout: 5 * time.Second}),
		// A call made for a request this node serves (a router's part
		// of it, maybe to this node) gives back the request's receive
		// reservation first (internal/recvhold), at every message of a
		// stream too: waiting for a place while holding one deadlocks
		// once every place is held by routers waiting.
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			recvhold.Release(ctx)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			recvhold.Release(ctx)
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, err
			}
			return releasingStream{s}, nil
		})}
	if c.opts.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(c.opts.Token)))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, err
	}
	c.conns[addr] = cc
	return cc, nil
}

// releasingStream gives back its context's receive reservation before it
// sends each message.
type releasingStream struct{ grpc.ClientStream }

func (s releasingStream) SendMsg(m any) error {
	recvhold.Release(s.Context())
	return s.ClientStream.SendMsg(m)
}

// bearer sends the token as "authorization: Bearer <token>".
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// Close stops the watch and closes the connections.
func (c *Client) Close() error {
	c.cancel()
	err := c.etcd.Close()
	c.wg.Wait()
	c.mu.Lock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = nil
	c.mu.Unlock()
	return err
}

// checkAddr checks an advertised address: HOST:PORT with a port.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || port == "0" {
		return fmt.Errorf("cluster: advertise address %q: want HOST:PORT with a nonzero port", addr)
	}
	return nil
}
