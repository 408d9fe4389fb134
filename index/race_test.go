//go:build race

package index

// raceEnabled: sync.Pool drops items at random under the race detector.
const raceEnabled = true
