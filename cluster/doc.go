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
//	applied/<node-id>    the node's replicas' applied indexes (JSON, by
//	                     shard name), under its lease, about every second:
//	                     the lag `cluster status` prints
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
// Import: the node a request reaches reads the files from its own import
// directory (the server's Import) and writes each batch into the sharded
// collection as an UpsertBatch is routed (ShardedWriter: checked whole,
// then each shard's part on its leader), then ends the load on every
// shard it wrote to, as the end of an Upsert stream does.
//
// Replication (replicas.go, group.go, raftlog.go, replicated.go): a
// collection created with replicas R > 1 places each shard on R nodes
// (consecutive in the sorted live nodes) and makes it a Raft group on
// etcd's raft library, go.etcd.io/raft/v3: the i-th replica is Raft peer
// Shard.Peers[i] (i+1 at creation; IDs are never reused), the initial
// configuration the catalog's replicas. Each node runs
// its groups (Replicas, started by serve, following the catalog through
// the view) with the log and hard state in a Pebble database of its own
// (<data>/raft, key range g/<shard>@<collection UID>/), messages over the
// nodes' ReplicationService (proto/wpcdb/v1/cluster.proto, one more
// service on the gRPC port, behind the same token), batched per node.
//
// Compaction and snapshots (raftlog.go, snapshot.go): once a group's log
// holds more than ReplicaOptions.CompactEntries entries (10,000) or
// CompactBytes (256 MiB), the Raft loop deletes the applied entries but
// the last KeepEntries (1,000). A replica that needs deleted entries (it
// was down, or is new) gets a Raft snapshot message naming the leader;
// it fetches a checkpoint of the leader's database (FetchSnapshot, a
// gRPC stream of 1 MiB chunks with CRC-32C, every limit checked before a
// byte is written; a damaged stream is an ErrSnapshot error and changes
// nothing), installs the shard's items from it into its local collection
// and replays the log after the snapshot's index. The install is
// recorded (synced) before it starts and finished by a restart: a crash
// while receiving leaves the old state, one while installing resumes
// from the same received checkpoint. A leader keeps the entries after a
// pending snapshot's index until its receiver has them, so that under a
// steady write load a snapshot is not followed by another.
//
// Moves (move.go; `wpcdb cluster move COLLECTION SHARD --from A --to B`):
// Client.Move creates the shard's local collection on B and records
// Shard.Move{A, B, peer} in the shard map (epoch+1). The shard's leader
// (moveStep, in its Raft loop) adds B as a learner (ConfChange); B starts
// its group from the replicas' configuration and catches up from a
// snapshot, or from the log when it is whole; once B is at most 8 entries
// behind the commit index it is promoted to a voter; if A leads, the
// leadership is transferred to B; A is removed; and the leader records
// the shard with B in A's place, Move cleared, itself the leader, epoch+1
// (publishMove, compare-and-swap). Each step waits for the previous conf
// change to commit; a new leader goes on from the configuration. A then
// stops its group, deletes its log and drops its copy. Conf changes take
// effect as they commit and the configuration is kept in the Raft log
// store. Writes go on throughout (the router follows the leader the
// catalog names, which may be B before the move is recorded done).
// `wpcdb cluster replace NODE` (Client.Replace) moves every replica of a
// node that is not live, each to the live non-replica holding the fewest
// replicas. Replacing is never automatic: a node down for a while (a
// reboot) comes back with its copies, far cheaper than copying them, and
// a shard of 3 replicas keeps its majority meanwhile; the operator
// decides when a node is gone.
//
// A write to a replicated shard (an upsert batch, a delete, an attribute
// update) goes to the leader the catalog names; there it is validated as
// one node validates it (an invalid item refuses the batch, or with
// skip_invalid is left out and reported) and only then proposed as one
// entry (ReplicatedWrite), so no invalid item enters the log. It is
// acknowledged once the entry is committed (a majority of the replicas
// saved it, synced) and applied on the leader; every replica applies the
// entries in log order through the local service, as a single node
// writes; the end of an Upsert stream is one more entry (LoadDone), so
// each replica ends the load (and calibrates) where one node would.
// Applying an entry again is harmless (each sets the state of the
// items it names), so the applied index is recorded after the
// collection's synced write and a crash in between re-applies a suffix.
// A replica that is not the leader refuses a write as Unavailable; the
// router retries a replicated shard's write while its part of the call
// lasts, at once when the catalog changes, else after a backoff (50 ms to
// 1 s). A leader that loses the leadership fails its in-flight writes as
// Unavailable ("may or may not be applied"): the router retries them,
// harmlessly.
//
// Leaders: a replica that becomes the leader waits until it has applied
// its log up to its first entry of the term (so it holds every write any
// leader acknowledged), then writes itself to the shard map with its
// term, raising the epoch, by compare-and-swap, and only over an older
// term. Routers follow through their watch. A dead leader is replaced
// within the election timeout (1–2 s at a 100 ms tick) plus that write.
//
// Consistency: an acknowledged write survives the loss of any minority
// of its shard's replicas. Reads (consistency unspecified) go to the
// leader the catalog names and, if it fails as Unavailable, to the other
// live replicas in turn: in the steady state a read sees every
// acknowledged write, but a read served by a follower (the leader down,
// or not yet replaced in the catalog) may miss the latest ones. A read
// with consistency=strong goes to each shard's leader only (retried as a
// write is), which confirms its leadership with a majority (a Raft read
// index, ReadOnlySafe) and waits until it has applied up to that index
// before reading: it sees every write acknowledged before it began, and
// without a majority it fails as Unavailable or at its deadline.
//
// # What is not there yet
//
//   - Changing R, cancelling a move in progress, and moving a shard of
//     one replica (not a Raft group) are not there; one move per shard
//     at a time. A node whose disk is lost must not rejoin under its ID
//     (Raft's votes and acknowledgements it gave would be forgotten):
//     replace it, then start it under a new ID.
//   - The sender's checkpoint is of its whole database (DB.Snapshot, hard
//     links, cheap to make), so a snapshot transfer also carries the
//     node's other collections; restricting it to the shard's key range
//     is the next step. While a replica installs a snapshot its local
//     collection holds a mix of old and new items; non-strong reads go to
//     it only when its shard's leader fails.
//   - A partial-result flag.
//   - Apply failures: a replica whose apply fails for a reason that is not
//     the request's (its disk) stops applying and refuses writes; a
//     restart replays from its applied index.
//   - A node down while its collection is dropped keeps that collection's
//     local shards and Raft log.
//   - With one replica (R = 1, the default) nothing of the above applies:
//     a node that dies makes its shards unavailable until it comes back
//     under the same ID (at any address).
//   - Cross-shard atomicity: the router validates a whole batch first
//     (wpcdb.CheckItems), so an invalid item refuses it on every shard
//     with one node's error; but a batch spanning shards is committed per
//     shard, so a shard failing for another reason (its node down, its
//     disk full) leaves the other shards' parts committed.
//   - Rebalancing, the number of shards after creation, on-demand Calibrate of a sharded
//     collection (each shard calibrates at the end of an Upsert stream;
//     each replica of a replicated shard where the log holds the
//     stream's LoadDone entry), TLS between nodes
//     (serve refuses --cluster with TLS), the in-flight memory budget at
//     the router (each shard enforces its own).
//
// # Why etcd's raft
//
// A spike (3 replicas in one process, in-memory log and transport for
// both, 5,000 sequential 4 KiB proposals, three runs each on the shared
// 2-core machine) measured a commit at p50 18 µs and 36–48 µs of CPU for
// hashicorp/raft v1.7.2, p50 29–40 µs and 51–66 µs of CPU for etcd's
// raft, with noisy tails for both: either is far below a synced Pebble
// batch and an item's φ, so speed does not decide. Fit does: etcd's raft
// is a state machine that leaves storage and transport to the
// application, so the log and hard state go into Pebble (as CockroachDB
// does) and Raft messages travel as one more RPC on the existing gRPC
// port; hashicorp/raft brings its own transport (another port, or a
// custom one), wants a LogStore (no Pebble one; raft-boltdb is another
// database) and adds hclog, go-metrics and msgpack. The price is the
// Ready loop (group.go). The spike is cluster/testdata/raftspike, a
// module of its own.
package cluster
