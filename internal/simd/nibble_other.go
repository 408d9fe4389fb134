//go:build !amd64 || noasm

package simd

func nibblesFast(*impl) bool { return false }
