package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// endless is an io.Reader of zero bytes that never ends, like /dev/zero.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestReadLineBounded(t *testing.T) {
	ctx := context.Background()
	r := bufio.NewReaderSize(strings.NewReader("short\n"+strings.Repeat("x", 100)+"\nlast"), 16)
	line, err := readLine(ctx, r, nil, 50)
	if err != nil || string(line) != "short\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if _, err := readLine(ctx, r, nil, 50); !errors.Is(err, errLineTooLong) {
		t.Fatalf("100-byte line under a 50-byte limit: %v", err)
	}
	if err := skipLine(ctx, r); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(ctx, r, nil, 50); err != io.EOF || string(line) != "last" {
		t.Fatalf("last line %q, %v", line, err)
	}
	// An endless line ends at the limit, and skipping it ends when the
	// context does (SIGTERM).
	zr := bufio.NewReaderSize(endless{}, 4096)
	if _, err := readLine(ctx, zr, nil, 1<<20); !errors.Is(err, errLineTooLong) {
		t.Fatalf("endless line: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := skipLine(cctx, zr); !errors.Is(err, context.Canceled) {
		t.Fatalf("skipping an endless line after cancel: %v", err)
	}
}
