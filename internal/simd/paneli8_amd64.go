//go:build amd64 && !noasm

package simd

import "golang.org/x/sys/cpu"

//go:noescape
func panelI8VNNI(out *int32, q *uint8, p *int8, groups, npanels int)

func panelI8Asm(out []int32, q []uint8, panels []int8, groups, npanels int) {
	panelI8VNNI(&out[0], &q[0], &panels[0], groups, npanels)
}

// panelI8Arch is the VNNI kernel where the CPU has it (Zen 4, Ice Lake
// and later), else the generic loop: an AVX-512 CPU without VNNI
// (Skylake-X) still runs every other AVX-512 kernel.
func panelI8Arch() func(out []int32, q []uint8, panels []int8, groups, npanels int) {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VNNI {
		return panelI8Asm
	}
	return panelI8Generic
}
