package wpcerr

import (
	"errors"
	"testing"
)

func TestErrorf(t *testing.T) {
	sentinel := New(InvalidArgument, "pkg: invalid thing")
	err := Errorf(sentinel, "thing %q: size %d", "a", 3)
	if err.Error() != `thing "a": size 3` {
		t.Errorf("message %q", err.Error())
	}
	if !errors.Is(err, sentinel) || !errors.Is(err, InvalidArgument) || errors.Is(err, NotFound) {
		t.Errorf("%v does not belong to its sentinel and kind alone", err)
	}
	if !errors.Is(Errorf(Unauthenticated, "no token"), Unauthenticated) {
		t.Error("a kind as the sentinel")
	}
}
