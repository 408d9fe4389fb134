package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wpcdb/wpcdb/storage"
)

// DefaultLeaseTTL is how long a node stays registered after its last
// keep-alive, in seconds: a node that dies leaves the cluster's view
// within this time.
const DefaultLeaseTTL = 10

// Node is a member of the cluster: a Client whose own record (ID and
// advertised address) lives in etcd under a lease it keeps alive.
type Node struct {
	*Client
	info  NodeInfo
	ttl   int64
	lmu   sync.Mutex // guards lease (re-registering replaces it)
	lease clientv3.LeaseID
}

// leaseID is the node's current lease.
func (n *Node) leaseID() clientv3.LeaseID {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	return n.lease
}

// Join connects to etcd and registers the node as id at addr (its gRPC
// service's advertised HOST:PORT) under a lease of ttl seconds (0:
// DefaultLeaseTTL). An ID registered by a live node at another address is
// refused; the same ID at the same address (a restart) takes the record
// over.
func Join(ctx context.Context, opts Options, id, addr string, ttl int64) (*Node, error) {
	if err := storage.ValidateName(id); err != nil {
		return nil, fmt.Errorf("cluster: node id: %w", err)
	}
	if err := checkAddr(addr); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	c, err := Connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	n := &Node{Client: c, info: NodeInfo{ID: id, Addr: addr}, ttl: ttl}
	if err := n.register(ctx); err != nil {
		c.Close()
		return nil, err
	}
	c.wg.Add(1)
	go n.keepAlive()
	return n, nil
}

// ID is the node's ID.
func (n *Node) ID() string { return n.info.ID }

func (n *Node) key() string { return n.prefix + nodesDir + n.info.ID }

// register grants a lease and puts the node's record under it.
func (n *Node) register(ctx context.Context) error {
	val, err := json.Marshal(n.info)
	if err != nil {
		return err
	}
	lease, err := n.etcd.Grant(ctx, n.ttl)
	if err != nil {
		return fmt.Errorf("cluster: lease: %w", err)
	}
	key := n.key()
	resp, err := n.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease.ID))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return fmt.Errorf("cluster: registering node %q: %w", n.info.ID, err)
	}
	if !resp.Succeeded {
		var old NodeInfo
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
			json.Unmarshal(kvs[0].Value, &old)
		}
		if old.Addr != n.info.Addr {
			n.etcd.Revoke(ctx, lease.ID)
			return fmt.Errorf("cluster: node id %q is registered by a live node at %s (this node advertises %s)", n.info.ID, old.Addr, n.info.Addr)
		}
		if _, err := n.etcd.Put(ctx, key, string(val), clientv3.WithLease(lease.ID)); err != nil {
			return fmt.Errorf("cluster: registering node %q: %w", n.info.ID, err)
		}
	}
	n.lmu.Lock()
	n.lease = lease.ID
	n.lmu.Unlock()
	n.view.update(func() { n.view.nodes[n.info.ID] = n.info })
	return nil
}

// keepAlive renews the lease until Close; if the lease is lost (etcd
// unreachable for longer than its TTL), it registers again.
func (n *Node) keepAlive() {
	defer n.wg.Done()
	for n.ctx.Err() == nil {
		ch, err := n.etcd.KeepAlive(n.ctx, n.leaseID())
		if err == nil {
			for range ch {
			}
		}
		if n.ctx.Err() != nil {
			return
		}
		n.log.Warn("cluster: lease lost; registering again", "node", n.info.ID, "err", err)
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(time.Second):
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.opts.DialTimeout)
		if err := n.register(ctx); err != nil {
			n.log.Warn("cluster: registering again", "node", n.info.ID, "err", err)
		}
		cancel()
	}
}

// Close leaves the cluster: the keep-alive stops, the node's record is
// removed at once (its lease revoked), then the client closes.
func (n *Node) Close() error {
	n.cancel()
	n.wg.Wait() // the keep-alive no longer changes n.lease
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.DialTimeout)
	_, rerr := n.etcd.Revoke(ctx, n.leaseID())
	cancel()
	err := n.Client.Close()
	if rerr != nil {
		return fmt.Errorf("cluster: leaving: %w", rerr)
	}
	return err
}
