// Package cluster runs wpcdb past one machine: collections split into
// shards over nodes coordinated by etcd (issue 19). It sits above the root
// package (it talks to nodes only through the gRPC API of server/wpcdbv1)
// and below server and cmd/wpcdb, which wire it in.
//
// # What is there
//
// Membership: a node joins (Join) with an ID and the HOST:PORT other nodes
// reach its gRPC service at, under an etcd lease it keeps alive; a node
// that dies leaves every view within the lease's TTL, one that closes
// leaves at once.
//
// Catalog: each sharded collection's ShardMap (its configuration, and per
// shard the replicas, the leader and an epoch) is one etcd key. Every
// node keeps a View of the nodes and the catalog through a watch: the
// node that creates a collection routes it at once, the others once the
// watch brings it (milliseconds; until then they answer NOT_FOUND). Key
// layout, under Options.Prefix (default "/wpcdb/"):
//
//	nodes/<node-id>      NodeInfo (JSON), under the node's lease
//	collections/<name>   ShardMap (JSON)
//
// Placement: shard k of collection C is a local collection named
// "C.s<k>" on its node (so a sharded collection's own name may not end
// in ".s<digits>"); CreateCollection places the shards on the live nodes
// in turn, sorted by ID, starting at the name's hash.
//
// Routing: an item's shard is ShardOf(id, shards), FNV-1a 64 of the ID's
// bytes modulo the number of shards. This function is part of every
// sharded collection's on-disk contract and never changes (a golden test
// pins it). Any node accepts any call (Router, registered through
// server.Options.Wrap): a call naming a sharded collection is forwarded
// over the gRPC API to its shards' leaders with the shards' names, where
// it is a local call; every other call is the local service's.
//
// Reads: Search fans out to every shard for its exact top offset+k and
// merges by internal/order (score descending, then ID); since every score
// is exact, the merged page is the one a single node holding every item
// returns for the same candidates (the tests check ids and float64 scores
// for equality). Get, UpdateAttrs go to one shard; GetMany, Delete,
// Rerank to the shards of their IDs, answers in the request's order;
// Count and Describe add up; Scroll walks the shards in order (its cursor
// is "<shard>:<the shard's cursor>"). Each shard's part runs within
// Options.ShardTimeout; a failed shard refuses the whole answer as
// Unavailable, "partial result refused", naming each failed shard and its
// node. Errors a shard gives for the request itself (a bad filter, an
// unknown ID) keep their code and message; a refused upsert item is
// named by its index in the caller's request, as one node names it.
//
// # What is not there yet
//
//   - Replication: every shard has one replica. A node that dies makes its
//     shards unavailable (their data waits on its disk) until it comes
//     back under the same ID (at any address).
//   - Cross-shard atomicity: the router validates a whole batch first
//     (wpcdb.CheckItems), so an invalid item refuses it on every shard
//     with one node's error; but a batch spanning shards is committed per
//     shard, so a shard failing for another reason (its node down, its
//     disk full) leaves the other shards' parts committed.
//   - Moves and rebalancing (`cluster move`, replacing a dead node), the
//     number of shards after creation, consistency levels, accepting
//     partial results, Import of files into a sharded collection,
//     on-demand Calibrate of a sharded collection (each
//     shard calibrates at the end of an Upsert stream), TLS between nodes
//     (serve refuses --cluster with TLS), the in-flight memory budget at
//     the router (each shard enforces its own).
//
// # Replication: the design to take next
//
// Each shard becomes a Raft group over its R replicas on etcd's raft
// library, go.etcd.io/raft/v3 (v3.7.0, already in the module graph through
// the tests' embedded etcd), rather than hashicorp/raft v1.7.2. A spike
// (3 replicas in one process, in-memory log and transport for both,
// 5,000 sequential 4 KiB proposals, three runs each on the shared 2-core
// machine) measured a commit at p50 18 µs and 36–48 µs of CPU for
// hashicorp/raft, p50 29–40 µs and 51–66 µs of CPU for etcd's raft, with
// noisy tails for both: either is far below a synced Pebble batch and an
// item's φ, so speed does not decide. Fit does: etcd's raft is a state
// machine that leaves storage and transport to the application, so the
// log and hard state go into the node's own Pebble (as CockroachDB does)
// and Raft messages travel as one more RPC on the existing gRPC port;
// hashicorp/raft brings its own transport (another port, or a custom
// one), wants a LogStore (no Pebble one; raft-boltdb is another
// database) and adds hclog, go-metrics and msgpack. The price is the
// Ready loop the application writes (about 70 lines in the spike,
// cluster/testdata/raftspike, a module of its own). Note that raft
// v3.7.0's messages are protobuf-go types (pointers, getters).
// The log entry is an upsert, delete or attribute update batch as its
// proto; applying it is the same Collection call a single node makes, so
// validation runs before proposal (on the leader) and an entry never
// fails on apply. The Raft log and hard state live in
// the node's Pebble under a per-shard prefix, and a snapshot is a Pebble
// checkpoint of the shard's collection, which a new replica receives
// before the log tail. An upsert is acknowledged once committed (a
// majority has it durably). The leader of each group is written to the
// ShardMap with the epoch raised (by the new leader, with a compare on
// the old epoch), so routers follow leader changes through their watch;
// a request carrying an older epoch is refused with FailedPrecondition
// and retried once the watch catches up. Reads go to any healthy replica
// by default and to the leader with consistency=strong (a read index).
// Membership changes (moves, dead-node replacement) are Raft conf
// changes driven by a controller elected through an etcd lease.
package cluster
