// Package wpcerr is wpcdb's error vocabulary: a handful of kinds that say
// what a caller can do about an error (fix the request, create the thing,
// restore from a backup, stop the other process), the sentinels each
// package names for its own errors, each belonging to one kind, and
// FieldError, a bad value in a named field.
//
// A caller asks errors.Is(err, kind) and gets the answer from any layer:
// storage's ErrInvalidItem, wpcsim's ErrInvalidCloud and query's
// ErrInvalidFilter are all InvalidArgument. So the server maps kinds to
// status codes in one table, and nothing edits an error's text: a
// FieldError's message is "field: reason" and the caller adds its own
// context (the item's position and ID) around it.
//
// The root package re-exports the kinds as wpcdb.ErrInvalidArgument and
// so on, and FieldError as wpcdb.FieldError.
package wpcerr

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds. Their messages are short: an error reads "<kind>: <what>".
var (
	InvalidArgument    = errors.New("invalid argument")
	NotFound           = errors.New("not found")
	Exists             = errors.New("already exists")
	FailedPrecondition = errors.New("failed precondition")
	ResourceExhausted  = errors.New("resource exhausted")
	Corrupt            = errors.New("corrupt data")
	Incompatible       = errors.New("incompatible on-disk format")
	Locked             = errors.New("database in use")
	Closed             = errors.New("closed")
	// Unauthenticated: the caller did not prove who it is (the server's
	// bearer token).
	Unauthenticated = errors.New("unauthenticated")
)

// sentinel is a package's named error of one kind.
type sentinel struct {
	msg  string
	kind error
}

func (s *sentinel) Error() string { return s.msg }

// Is makes errors.Is(err, kind) true for every error that wraps s.
func (s *sentinel) Is(target error) bool { return target == s.kind }

// New returns a sentinel error with this message that belongs to kind:
// errors.Is(err, it) holds for the errors that wrap it, and so does
// errors.Is(err, kind).
func New(kind error, msg string) error { return &sentinel{msg: msg, kind: kind} }

// Errorf returns an error whose message is the formatted text alone and
// which wraps sentinel (a kind, or a package's sentinel of one):
// errors.Is(err, sentinel) holds, and so does errors.Is(err, its kind).
// The arguments are formatted as by fmt.Sprintf (%w wraps nothing).
func Errorf(sentinel error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

type kindError struct {
	msg      string
	sentinel error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.sentinel }

// FieldError is a bad value in a named field of a request, an item or a
// configuration. Field names it with its path and indices ("id",
// "attrs.year", "weights[3]", "points[2][17]"); Sentinel is the package's
// error it belongs to (wpcsim.ErrInvalidCloud, storage.ErrInvalidItem),
// and through it a kind. Its message is "field: reason"; a caller wraps
// it with what it knows (an item's position and ID).
type FieldError struct {
	Field    string
	Reason   string
	Sentinel error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, e.Sentinel) and errors.Is(err, its kind)
// true.
func (e *FieldError) Unwrap() error { return e.Sentinel }

// Problems is a list of problems found at once (a configuration checked
// whole), joined into one message "a; b; c" under Sentinel's.
type Problems struct {
	Sentinel error
	List     []string
}

func (p *Problems) Error() string {
	msg := p.Sentinel.Error() + ": "
	for i, s := range p.List {
		if i > 0 {
			msg += "; "
		}
		msg += s
	}
	return msg
}

func (p *Problems) Unwrap() error { return p.Sentinel }

// Check returns nil when list is empty, else a *Problems.
func Check(sentinel error, list []string) error {
	if len(list) == 0 {
		return nil
	}
	return &Problems{Sentinel: sentinel, List: list}
}

// cutKeep is how much of a long input an error quotes: its first and last
// cutKeep/2 bytes (a path's start and its file name).
const cutKeep = 64

// CutPath returns p for an error message: whole when at most 64 bytes,
// else its first and last 32 bytes around "…" with its length, so that a
// long path (or any long argument) does not come back whole.
func CutPath(p string) string {
	if len(p) <= cutKeep {
		return p
	}
	head, tail := p[:cutKeep/2], p[len(p)-cutKeep/2:]
	return fmt.Sprintf("%s…%s (%d bytes)", head, tail, len(p))
}

// CutPaths returns err with every one of inputs longer than 64 bytes that
// its message quotes cut there (CutPath); errors.Is and errors.As see err
// as it was. nil stays nil.
func CutPaths(err error, inputs ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	cut := msg
	for _, p := range inputs {
		if len(p) > cutKeep && strings.Contains(cut, p) {
			cut = strings.ReplaceAll(cut, p, CutPath(p))
		}
	}
	if cut == msg {
		return err
	}
	return &cutError{msg: cut, err: err}
}

// cutError is an error whose message has its long inputs cut.
type cutError struct {
	msg string
	err error
}

func (e *cutError) Error() string { return e.msg }
func (e *cutError) Unwrap() error { return e.err }
