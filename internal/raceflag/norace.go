//go:build !race

// Package raceflag tells tests whether the race detector is on.
package raceflag

// Enabled reports whether the race detector is on. Under it sync.Pool drops
// items at random, so allocation counts are not meaningful.
const Enabled = false
