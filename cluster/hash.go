package cluster

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// ShardOf is the shard of an item: FNV-1a, 64 bits, of the ID's bytes,
// modulo the collection's number of shards. The hash is part of the
// on-disk contract of every sharded collection (an item lives in the shard
// this names), so it must never change; TestShardOfGolden pins it.
func ShardOf(id string, shards int) int {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(shards))
}

// ShardName is the name of shard k's local collection on its nodes:
// "<collection>.s<k>".
func ShardName(collection string, k int) string {
	return collection + ".s" + strconv.Itoa(k)
}

// isShardName reports whether a name has a shard's form (ends in ".s"
// and digits): a sharded collection may not be named so, so that a shard's
// name never is another sharded collection's.
func isShardName(name string) bool {
	i := strings.LastIndex(name, ".s")
	if i < 0 || i+2 == len(name) {
		return false
	}
	_, err := strconv.ParseUint(name[i+2:], 10, 32)
	return err == nil
}

// MaxShards bounds a collection's shards.
const MaxShards = 256

func checkShards(name string, shards int) error {
	if shards < 1 || shards > MaxShards {
		return wpcerr.Errorf(wpcerr.InvalidArgument, "collection %q: shards must be between 1 and %d, got %d", name, MaxShards, shards)
	}
	return nil
}
