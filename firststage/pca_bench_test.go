package firststage

import (
	"math/rand/v2"
	"testing"

	"github.com/wpcdb/wpcdb/wpcsim"
)

func BenchmarkFitPCA(b *testing.B) {
	sim, _ := wpcsim.New(wpcsim.Config{Kernel: wpcsim.DefaultKernel()})
	feat, _ := wpcsim.NewFeatureMap(sim.Config(), 64, wpcsim.FeatureOptions{D: 1024})
	m, _ := NewMap(sim, feat, Representation{})
	rng := rand.New(rand.NewPCG(1, 2))
	sample := make([]sampled, 2000)
	for i := range sample {
		phi := make([]float32, m.PhiDim())
		for k := range phi {
			phi[k] = float32(rng.NormFloat64())
		}
		sample[i] = sampled{iid: uint32(i), phi: phi}
	}
	for b.Loop() {
		fitPCA(m, sample, 2000, rng)
	}
}
