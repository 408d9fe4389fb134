package storage

import (
	"context"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Pipelined writes: Stage and PendingWrite.
//
// A write has a part that needs the CPU (looking up its IDs, assigning
// internal IDs, building its batch, encoding its new records into tables)
// and a part that waits for the disk (syncing the tables, ingesting them,
// committing the batch through the synced WAL). A bulk load of compact
// items spent more wall time in the second than in the first (100k items:
// 2.2 s of 3.5 s in syncing and ingesting the tables, 2 cores, loaded).
// Stage does the first part in the caller (the tables and the sorted
// small keys on goroutines of their own: PendingWrite.encode, writeFresh)
// and hands the second to the collection's committer, so a loader
// (ingest.Commit) stages the next batches while earlier ones sync. Measured (bench.Ingest of 100k compact items, the load alone,
// three alternating runs against the unpipelined commit, load average
// ~5.6 on 2 cores): 18,283–22,476 items/s against 15,080–16,739, and
// 26.2k–30.0k items per CPU second against 22.4k–24.8k (the sorted small
// keys' cheaper sort is in both figures of the pipelined runs).
//
// Contract, unchanged: a write is acknowledged (Wait returns nil, the
// then callback sees no error) only after everything it wrote is synced
// and committed; after a crash an acknowledged write is complete, and one
// not acknowledged is either complete or absent, never partly visible.
//
// How it is kept:
//   - One committer per collection (runCommits) commits the staged writes
//     in staging order, several at a time when they are ready together
//     (commitGroup): their tables in one ingest, then their batches as one
//     synced batch. On disk the sequence is that of one write whose
//     records are those of the group, so crash recovery is what it was:
//     the records are ingested at internal IDs at or after the committed
//     next ID and become reachable only with the synced batch (bulk.go;
//     orphans are removed on open), which holds every write of the group
//     or none; each is acknowledged after it, in order.
//   - Nothing of a staged write is visible before its commit: its batch is
//     not applied, its tables are unsynced files under temporary names
//     (removed on open after a crash), and the in-memory state (next ID,
//     epoch, live set, attribute bitmaps) changes only after the commit.
//   - A write staged on top of others builds on their outcome: it takes
//     internal IDs after theirs (stagedNext) and the epoch after theirs.
//     The ID map and attributes it reads come from Pebble, which does not
//     have the staged writes yet, so a write that touches an ID a pending
//     write holds waits for the pending writes first (stagedBaseLocked)
//     and so does any write that edits point postings, a Delete, an
//     attribute update, a drop or a saved index's commit (lockWrites).
//   - If a commit fails, every write staged after it fails too without
//     writing anything (its base was wrong), and the in-memory state is
//     the last successful commit's.
//
// TestCommitAcksAfterSync (package ingest) fails if an acknowledgement
// came before the sync; TestCrashKeepsAcknowledgedWrites and the SIGKILL
// test cover the rest.

// PendingWrite is a staged write (Stage): it is committed by the
// collection's committer (runCommits) after the writes staged before it,
// with those staged after it that are ready by then (commitGroup).
type PendingWrite struct {
	c      *Coll
	prev   *PendingWrite // staged just before it; nil once committed
	b      *pebble.Batch
	tables *freshTables
	// opsDone is closed once the write's sorted small keys are in b
	// (nil: there were none to add).
	opsDone chan struct{}
	ids     map[string]int // the write's IDs (to order conflicting writes)
	then    func(iids []uint32, err error)

	iids    []uint32
	changes []writeChange
	next    uint32 // next internal ID after this write
	epoch   uint64 // this write's epoch

	done chan struct{}
	err  error // set before done is closed
}

// Wait blocks until the write is committed and returns its internal IDs
// (those of the items in order), or the error that stopped it (nothing of
// it was written then).
func (p *PendingWrite) Wait() ([]uint32, error) {
	<-p.done
	if p.err != nil {
		return nil, p.err
	}
	return p.iids, nil
}

// Done is closed when the write is committed or failed.
func (p *PendingWrite) Done() <-chan struct{} { return p.done }

// encode finishes the write's encoding off the caller's goroutine: its
// tables are written and synced (writeFresh, started by Stage) and ops,
// its sorted small keys, are added to its batch. Measured (100k compact
// items, load average ~8): the sort and the copy into the batch were 0.14
// of the load's 1.37 CPU-s, in the goroutine that prepares the next batch.
func (p *PendingWrite) encode(ops *sortedOps) {
	if ops == nil {
		return
	}
	p.opsDone = make(chan struct{})
	go func() {
		defer close(p.opsDone)
		ops.apply(p.b) // b copies them
		ops.release()
	}()
}

// wait blocks until the write is encoded; ready reports whether it is,
// without blocking.
func (p *PendingWrite) wait() {
	if p.opsDone != nil {
		<-p.opsDone
	}
	if p.tables != nil {
		<-p.tables.done
	}
}

func (p *PendingWrite) ready() bool {
	return (p.opsDone == nil || isClosed(p.opsDone)) && (p.tables == nil || isClosed(p.tables.done))
}

// maxCommitGroup bounds the writes committed together.
const maxCommitGroup = 16

// enqueueLocked hands p to the collection's committer, starting it if it
// is not running. writeMu is held, so writes are queued in staging order.
func (c *Coll) enqueueLocked(p *PendingWrite) {
	c.commitMu.Lock()
	c.commitQueue = append(c.commitQueue, p)
	start := !c.committing
	c.committing = true
	c.commitMu.Unlock()
	if start {
		go c.runCommits()
	}
}

// runCommits commits the queued writes in order until the queue is empty:
// the first one once it is encoded, and with it those after it that are
// encoded by then, as long as their batches together stay under the bulk
// path's size (so the merged batch goes through the WAL, as each would).
func (c *Coll) runCommits() {
	for {
		c.commitMu.Lock()
		if len(c.commitQueue) == 0 {
			c.committing = false
			c.commitMu.Unlock()
			return
		}
		lead := c.commitQueue[0]
		c.commitMu.Unlock()
		lead.wait()
		c.commitMu.Lock()
		n, size := 1, lead.b.Len()
		for n < len(c.commitQueue) && n < maxCommitGroup {
			q := c.commitQueue[n]
			if !q.ready() || size+q.b.Len() >= c.store.bulkWriteBytes {
				break
			}
			size += q.b.Len()
			n++
		}
		group := c.commitQueue[:n:n]
		c.commitQueue = c.commitQueue[n:]
		c.commitMu.Unlock()
		c.commitGroup(group)
	}
}

// commitGroup commits writes staged one after the other as one: their
// tables ingested in one Pebble ingest, then their batches merged into one
// batch committed synced (one sync of the directory, the manifest and the
// WAL for them all, where each write alone paid the three: measured
// (100k compact items, 1,000 a batch, load average ~6), the ingest took
// 3–36 ms a batch and the commit a few more, 1.7 s of a 2.5 s load, with
// the tables' own syncs and the CPU work overlapped behind them). Each
// write is whole after a crash or not there: the tables of all are
// ingested at internal IDs no committed ID map points to (bulk.go), and
// the merged batch is atomic. Their in-memory state is then applied, and
// they are acknowledged, in order. A write whose predecessor failed fails
// without writing, and so do those after it.
func (c *Coll) commitGroup(group []*PendingWrite) {
	for _, p := range group {
		p.wait()
	}
	fail := func(ps []*PendingWrite, err error) {
		for _, p := range ps {
			if p.tables != nil {
				p.tables.discard(c.store)
			}
			p.err = err
			err = fmt.Errorf("storage: write to %q not committed: a write staged before it failed: %w", c.name, err)
		}
	}
	all := group // group may be cut below; every write of it is finished
	defer func() {
		for _, p := range all {
			p.b.Close()
			p.prev = nil
			if p.then != nil {
				if p.err != nil {
					p.then(nil, p.err)
				} else {
					p.then(p.iids, nil)
				}
			}
			close(p.done)
		}
	}()
	if prev := group[0].prev; prev != nil && prev.err != nil {
		// prev is done: it was committed (or failed) before this group.
		fail(group, fmt.Errorf("storage: write to %q not committed: a write staged before it failed: %w", c.name, prev.err))
		return
	}
	// Cut the group before the first write whose tables failed: those
	// before it commit, it and those after it fail.
	var paths []string
	for i, p := range group {
		if p.tables == nil {
			continue
		}
		if err := p.tables.err; err != nil {
			fail(group[i:], fmt.Errorf("storage: write to %q: %w", c.name, err))
			group = group[:i]
			break
		}
		paths = append(paths, p.tables.paths...)
	}
	if len(group) == 0 {
		return
	}
	if len(paths) > 0 {
		err := c.store.db.Ingest(context.Background(), paths)
		for _, p := range group {
			if p.tables != nil {
				p.tables.discard(c.store)
			}
		}
		if err != nil {
			fail(group, fmt.Errorf("storage: write to %q: %w", c.name, err))
			return
		}
	}
	b := group[0].b
	for _, p := range group[1:] {
		if err := b.Apply(p.b, nil); err != nil {
			fail(group, fmt.Errorf("storage: write to %q: %w", c.name, err))
			return
		}
	}
	if err := c.commit(b); err != nil {
		fail(group, fmt.Errorf("storage: write to %q: %w", c.name, err))
		return
	}
	for _, p := range group {
		if c.store.clouds != nil {
			c.store.clouds.invalidate(c.cid, p.iids)
		}
		c.mu.Lock()
		c.nextIID = p.next
		c.epoch = p.epoch
		for _, ch := range p.changes {
			c.live.Add(ch.iid)
			c.unindexAttrs(ch.iid, ch.oldAttrs)
			c.indexAttrs(ch.iid, ch.newAttrs)
		}
		c.mu.Unlock()
		p.changes = nil
	}
}

// stagedBaseLocked returns the next internal ID and the epoch a write of
// items builds on: those after the pending staged writes, or, when there
// are none, when alone is set or when items touch an ID one of them holds,
// the committed ones after waiting for them. writeMu is held.
func (c *Coll) stagedBaseLocked(items []ItemWrite, alone bool) (uint32, uint64) {
	// Forget the writes already committed (or failed): Pebble and the
	// in-memory state have their outcome.
	for len(c.staged) > 0 && isDone(c.staged[0]) {
		c.staged = c.staged[1:]
	}
	if len(c.staged) > 0 {
		conflict := alone
		for i := 0; i < len(items) && !conflict; i++ {
			for _, p := range c.staged {
				if _, ok := p.ids[items[i].ID]; ok {
					conflict = true
					break
				}
			}
		}
		if !conflict {
			last := c.staged[len(c.staged)-1]
			return last.next, last.epoch
		}
		c.drainLocked()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.nextIID, c.epoch
}

// pushStagedLocked records p as the last staged write. writeMu is held.
func (c *Coll) pushStagedLocked(p *PendingWrite) {
	if n := len(c.staged); n > 0 {
		p.prev = c.staged[n-1]
	}
	c.staged = append(slices.Clip(c.staged), p)
}

// drainLocked waits until every staged write is committed (or failed).
// writeMu is held, so no other is staged meanwhile.
func (c *Coll) drainLocked() {
	if n := len(c.staged); n > 0 {
		<-c.staged[n-1].done
		c.staged = nil
	}
}

// lockWrites takes writeMu for a change that reads the committed state
// (Delete, attribute updates, point postings, a drop, a saved index's
// commit): it waits for the staged writes to commit first.
func (c *Coll) lockWrites() {
	c.writeMu.Lock()
	c.drainLocked()
}

func isDone(p *PendingWrite) bool { return isClosed(p.done) }

// isClosed reports whether ch is closed, without blocking.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
