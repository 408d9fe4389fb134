package storage

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
)

var (
	// ErrCollectionNotFound: no collection by that name (or it was dropped).
	ErrCollectionNotFound = errors.New("storage: collection not found")
	// ErrCollectionExists: CreateCollection of a name already in use.
	ErrCollectionExists = errors.New("storage: collection already exists")
	// ErrNotFound: no live item with that ID.
	ErrNotFound = errors.New("storage: item not found")
	// ErrInvalidConfig: a collection config or name that cannot be used.
	ErrInvalidConfig = errors.New("storage: invalid collection config")
	// ErrInvalidItem: an item that cannot be stored (bad ID, attribute, or a
	// value the encoding cannot hold). Wrapped with the item's ID and field.
	ErrInvalidItem = errors.New("storage: invalid item")
	// ErrIncompatible: data written by an incompatible build.
	ErrIncompatible = errors.New("storage: incompatible on-disk format")
	// ErrCorrupt: data that does not decode; never caused by user input.
	ErrCorrupt = errors.New("storage: corrupt data")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("storage: closed")
)

// readError wraps an error from reading what (e.g. `item 12 of collection
// "docs"`): Pebble's corruption errors become ErrCorrupt, so callers tell a
// damaged disk from a bug or a closed store.
func readError(err error, what string) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
	}
	return fmt.Errorf("storage: read %s: %w", what, err)
}

// iterError is readError for an iterator's Error, which may be nil.
func iterError(err error, what string) error {
	if err == nil {
		return nil
	}
	return readError(err, what)
}

// QuoteID quotes an ID for an error message, cut to its first 64 bytes
// (on a rune boundary) with its length when longer: errors never echo an
// oversized input whole.
func QuoteID(id string) string {
	const keep = 64
	if len(id) <= keep {
		return fmt.Sprintf("%q", id)
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(id[cut]) {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", id[:cut], len(id))
}
