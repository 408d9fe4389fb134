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
// node keeps a View of the nodes and the catalog through a watch. Key
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
// named by its index in the caller's request.
//
// # What is not there yet
//
//   - Replication: every shard has one replica. A node that dies makes its
//     shards unavailable (their data waits on its disk) until it comes
//     back under the same ID (at any address).
//   - Cross-shard atomicity: an upsert batch spanning shards is atomic per
//     shard only; an invalid item refuses its shard's part while the other
//     parts may commit (the error says which item).
//   - Moves and rebalancing (`cluster move`, replacing a dead node), the
//     number of shards after creation, consistency levels, accepting
//     partial results, on-demand Calibrate of a sharded collection (each
//     shard calibrates at the end of an Upsert stream), TLS between nodes
//     (serve refuses --cluster with TLS), the in-flight memory budget at
//     the router (each shard enforces its own).
//
// # Replication: the design to take next
//
// Each shard becomes a Raft group over its R replicas (etcd's raft
// library, go.etcd.io/raft/v3, already in the module graph through the
// embedded etcd of the tests; hashicorp/raft is the other candidate: the
// choice waits for a measured spike of an upsert batch's commit latency
// on loopback with both). The log entry is an upsert, delete or attribute
// update batch as its proto; applying it is the same Collection call a
// single node makes, so validation runs before proposal (on the leader)
// and an entry never fails on apply. The Raft log and hard state live in
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
