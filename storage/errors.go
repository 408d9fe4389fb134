package storage

import (
	"fmt"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// The package's errors, each of one kind (see internal/wpcerr).
var (
	// ErrCollectionNotFound: no collection by that name (or it was dropped).
	ErrCollectionNotFound = wpcerr.New(wpcerr.NotFound, "storage: collection not found")
	// ErrCollectionExists: CreateCollection of a name already in use.
	ErrCollectionExists = wpcerr.New(wpcerr.Exists, "storage: collection already exists")
	// ErrNotFound: no live item with that ID.
	ErrNotFound = wpcerr.New(wpcerr.NotFound, "storage: item not found")
	// ErrInvalidConfig: a collection config or name that cannot be used.
	// It is collconfig.ErrInvalid, whose errors the configuration's own
	// validation returns.
	ErrInvalidConfig = collconfig.ErrInvalid
	// ErrInvalidItem: an item that cannot be stored (bad ID, attribute, or a
	// value the encoding cannot hold): a *wpcerr.FieldError naming the
	// field, which the caller wraps with the item's position and ID.
	ErrInvalidItem = wpcerr.New(wpcerr.InvalidArgument, "storage: invalid item")
	// ErrIncompatible: data written by an incompatible build.
	ErrIncompatible = wpcerr.New(wpcerr.Incompatible, "storage: incompatible on-disk format")
	// ErrCorrupt: data that does not decode; never caused by user input.
	ErrCorrupt = wpcerr.New(wpcerr.Corrupt, "storage: corrupt data")
	// ErrClosed: the store was closed.
	ErrClosed = wpcerr.New(wpcerr.Closed, "storage: closed")
)

// invalidItem is a bad field of an item.
func invalidItem(field, format string, args ...any) error {
	return &wpcerr.FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Sentinel: ErrInvalidItem}
}

// readError wraps an error from reading what (e.g. `item 12 of collection
// "docs"`): Pebble's corruption errors become ErrCorrupt, so callers tell a
// damaged disk from a bug or a closed store.
func readError(err error, what string) error {
	if pebble.IsCorruptionError(err) {
		// Pebble joins its error with a detail carrier whose text,
		// "<corruption detail carrier>", would end the message on a line
		// of its own; the details are the error itself.
		if info := pebble.ExtractDataCorruptionInfo(err); info != nil && info.Details != nil {
			err = info.Details
		}
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
