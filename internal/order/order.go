// Package order is the one order of results in wpcdb: higher score first,
// then lower ID, so that equal scores (duplicates, ties of a coarse first
// stage) come back in the same order on every path and every run. Indexes
// rank (score, internal ID) pairs with it, the query layer (score, string
// ID) hits. Scores are never NaN here: stored clouds and index vectors are
// validated.
package order

import "cmp"

// Compare orders (score sa, ID ka) against (sb, kb): -1 when a ranks first.
// It is a comparison function for slices.SortFunc.
func Compare[S float32 | float64, K cmp.Ordered](sa S, ka K, sb S, kb K) int {
	switch {
	case sa > sb:
		return -1
	case sa < sb:
		return 1
	}
	return cmp.Compare(ka, kb)
}

// Better reports whether (sa, ka) ranks before (sb, kb).
func Better[S float32 | float64, K cmp.Ordered](sa S, ka K, sb S, kb K) bool {
	return Compare(sa, ka, sb, kb) < 0
}
