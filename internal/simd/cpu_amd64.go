//go:build amd64 && !noasm

package simd

import "golang.org/x/sys/cpu"

// archImpls returns the assembly paths this CPU runs, best first. x/sys/cpu
// already folds in whether the OS saves the wider registers.
func archImpls() []*impl {
	var ps []*impl
	avx2 := cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
	if avx2 && cpu.X86.HasAVX512F {
		ps = append(ps, avx512)
	}
	if avx2 {
		ps = append(ps, avx2Impl)
	}
	return ps
}

var avx512 = &impl{
	name:        PathAVX512,
	gram:        gram512,
	maxSim:      maxSim512,
	gram64:      gram64AVX512,
	norms64:     norms64AVX512Go,
	dist64:      dist64AVX512,
	exp:         exp512,
	cosAdd:      cosAdd512,
	rsqrt:       rsqrt512,
	dot:         dot512,
	dotI8:       dotI8Asm,
	panelI8:     panelI8Arch(),
	f16ToF32:    f16ToF32512,
	f32ToF16:    f32ToF16512,
	scanNibbles: scanNibblesArch(),
}

var avx2Impl = &impl{
	name:        PathAVX2,
	gram:        gram256,
	maxSim:      maxSim256,
	gram64:      gram64AVX2,
	norms64:     norms64AVX2Go,
	dist64:      dist64Compose(gram64AVX2),
	exp:         exp256,
	cosAdd:      cosAdd256,
	rsqrt:       rsqrt256,
	dot:         dot256,
	dotI8:       dotI8Asm,
	panelI8:     panelI8Generic,
	f16ToF32:    f16ToF32256,
	f32ToF16:    f32ToF16256,
	scanNibbles: scanNibblesAVX2,
}
