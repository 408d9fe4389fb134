package wpcerr

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
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

func TestCutPaths(t *testing.T) {
	long := "/data/" + strings.Repeat("d", 1000) + "/file.npy"
	if got := CutPath(long); len(got) > 100 || !strings.HasPrefix(got, "/data/ddd") || !strings.Contains(got, "d/file.npy (1015 bytes)") {
		t.Errorf("CutPath: %q", got)
	}
	if got := CutPath("short.npy"); got != "short.npy" {
		t.Errorf("CutPath of a short path: %q", got)
	}
	base := &fs.PathError{Op: "open", Path: long, Err: fs.ErrNotExist}
	err := CutPaths(fmt.Errorf("%w: points: %w", InvalidArgument, base), "short.npy", long)
	if strings.Contains(err.Error(), long) || !strings.Contains(err.Error(), CutPath(long)) || !strings.HasPrefix(err.Error(), "invalid argument: points: open /data/") {
		t.Errorf("CutPaths: %q", err)
	}
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, InvalidArgument) || !errors.As(err, &pe) || pe.Path != long {
		t.Errorf("CutPaths lost the error's chain: %v", err)
	}
	if e := errors.New("x"); CutPaths(e, long) != e || CutPaths(nil, long) != nil {
		t.Error("CutPaths changed an error that does not quote the input")
	}
}
