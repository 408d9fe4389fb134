package cluster

import "testing"

// TestShardOfGolden pins the item → shard function: every sharded
// collection's items live where it says, so it must never change. The
// constants are FNV-1a 64's published values ("" and "a") and values
// computed once by an independent implementation.
func TestShardOfGolden(t *testing.T) {
	const all = 1 << 62 // ShardOf(id, 2^62) is the hash's low 62 bits
	for _, c := range []struct {
		id     string
		shards int
		want   int
	}{
		{"", all, 0xcbf29ce484222325 & (all - 1)},
		{"a", all, 0xaf63dc4c8601ec8c & (all - 1)},
		{"item-000", 3, 2},
		{"item-001", 3, 1},
		{"item-042", 7, 1},
		{"foobar", 1000, 0x85944171f73967e8 % 1000},
	} {
		if got := ShardOf(c.id, c.shards); got != c.want {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", c.id, c.shards, got, c.want)
		}
	}
}

func TestShardNames(t *testing.T) {
	for name, want := range map[string]bool{"c.s0": true, "c.s12": true, "a.b.s3": true, "c": false, "c.s": false, "c.sx": false, "c.s-1": false, "cs1": false} {
		if isShardName(name) != want {
			t.Errorf("isShardName(%q) = %v, want %v", name, !want, want)
		}
	}
	if ShardName("c", 3) != "c.s3" || !isShardName(ShardName("coll", 255)) {
		t.Error("ShardName")
	}
}
