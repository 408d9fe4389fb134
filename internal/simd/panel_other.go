//go:build !amd64 || noasm

package simd

func archPanelWidth() int { return 0 }

func archScorePanel(dst, q, panel []float32) bool { return false }
