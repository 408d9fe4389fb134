//go:build !amd64 || noasm

package simd

// archImpls returns no assembly paths: this build has only the generic one.
func archImpls() []*impl { return nil }
