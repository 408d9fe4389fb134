package simd

// DotsI8 sets out[i] to the inner product of q with row idx[i] of codes,
// exactly, as an int32: codes holds rows of len(q) int8s, row r at
// codes[r·len(q):(r+1)·len(q)]. One call scores the unvisited neighbours
// of a graph node (package index), where a DotI8 call per neighbour paid
// three calls (the path's function value, the slice wrapper, the
// assembly) for a 64-byte dot. It panics when len(out) < len(idx), when
// len(q) > MaxDotI8Len, or when a row lies beyond codes (out[j] for the
// rows before it are then set). Safe for concurrent use; allocates nothing.
//
// The reference loop:
//
//	n := len(q)
//	for i, r := range idx {
//		out[i] = DotI8(q, codes[int(r)*n:int(r)*n+n])
//	}
func DotsI8(out []int32, q, codes []int8, idx []uint32) {
	if len(out) < len(idx) {
		panic("simd: DotsI8 with out shorter than idx")
	}
	if len(q) > MaxDotI8Len {
		panic("simd: DotsI8 of more than MaxDotI8Len elements")
	}
	if len(idx) == 0 {
		return
	}
	done := 0
	if active != generic {
		done = dotsI8Arch(out, q, codes, idx)
	}
	if done < len(idx) {
		dotsI8Generic(out[done:], q, codes, idx[done:])
	}
}

// dotsI8Generic is DotsI8's pure-Go path (a row beyond codes panics on
// the slice expression).
func dotsI8Generic(out []int32, q, codes []int8, idx []uint32) {
	n := len(q)
	for i, r := range idx {
		lo := int(r) * n
		if lo+n > len(codes) || lo+n < lo {
			panic("simd: DotsI8 row out of range")
		}
		out[i] = dotI8Generic(q, codes[lo:lo+n])
	}
}
