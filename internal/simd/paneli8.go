package simd

// PanelI8Lanes is how many codes one int8 panel holds (PanelI8's layout).
const PanelI8Lanes = 16

// PanelI8 scores npanels panels of int8 codes against one query, exactly:
// out[p*16+l] = Σ_g Σ_j q[4g+j] · panels[p*groups*64 + g*64 + l*4 + j], for
// lane l < 16, over groups of 4 dimensions g < groups. q is unsigned (the
// caller adds 128 to a signed code and corrects with the code sums), the
// panels signed: the operand types of AVX-512 VNNI's VPDPBUSD, one
// instruction per group of 4 dimensions for 16 codes. q must hold 4·groups
// bytes, panels npanels·groups·64, out npanels·16 (it panics otherwise);
// groups·4 must be at most MaxDotI8Len. Safe for concurrent use; allocates
// nothing.
//
// It is the flat scan of a first stage that keeps codes only (package
// index): a 64-dim code is 64 bytes where its float32 vector was 256.
func PanelI8(out []int32, q []uint8, panels []int8, groups, npanels int) {
	if groups < 0 || npanels < 0 || 4*groups > MaxDotI8Len {
		panic("simd: PanelI8 with a bad shape")
	}
	if len(q) < 4*groups || len(panels) < npanels*groups*64 || len(out) < npanels*PanelI8Lanes {
		panic("simd: PanelI8 slice shorter than its shape")
	}
	if groups == 0 {
		clear(out[:npanels*PanelI8Lanes])
		return
	}
	if npanels == 0 {
		return
	}
	active.panelI8(out, q, panels, groups, npanels)
}

func panelI8Generic(out []int32, q []uint8, panels []int8, groups, npanels int) {
	for p := 0; p < npanels; p++ {
		var acc [PanelI8Lanes]int32
		base := panels[p*groups*64 : (p+1)*groups*64]
		for g := 0; g < groups; g++ {
			q0, q1, q2, q3 := int32(q[4*g]), int32(q[4*g+1]), int32(q[4*g+2]), int32(q[4*g+3])
			blk := base[g*64 : g*64+64]
			for l := range acc {
				c := blk[4*l : 4*l+4]
				acc[l] += q0*int32(c[0]) + q1*int32(c[1]) + q2*int32(c[2]) + q3*int32(c[3])
			}
		}
		copy(out[p*PanelI8Lanes:], acc[:])
	}
}
