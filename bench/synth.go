package bench

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Synth generates clouds that look like a learned encoder's output, the way
// PAPER.md says a first stage must be tested: items belong to topics (so
// nearest neighbours mean something), points are clustered and anisotropic,
// and weights are signed, a few units up to ~10, about 40% negative.
// Item i is a pure function of (Seed, i), so generation parallelizes and a
// query set can be regenerated without the items. Make one with NewSynth;
// it is then safe for concurrent use.
type Synth struct {
	Seed      uint64
	Dim       int
	MinPoints int // points per item, drawn uniformly in [MinPoints, MaxPoints]
	MaxPoints int
	Topics    int // number of topic centres (default 64)

	scale   []float64   // per-axis scale (anisotropy)
	centres [][]float64 // topic centres
}

// Shapes named by workloads.
var (
	// PaperShape: 197 points (ViT-B/16 tokens) of dimension 512.
	PaperShape = Synth{Dim: 512, MinPoints: 197, MaxPoints: 197}
	// CompactShape: up to 16 points of dimension 64.
	CompactShape = Synth{Dim: 64, MinPoints: 4, MaxPoints: 16}
)

// NewSynth returns a generator of the given shape and seed.
func NewSynth(shape Synth, seed uint64) *Synth {
	s := shape
	s.Seed = seed
	s.init()
	return &s
}

func (s *Synth) init() {
	if s.Topics <= 0 {
		s.Topics = 64
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	s.scale = make([]float64, s.Dim)
	for k := range s.scale {
		s.scale[k] = math.Exp(0.7 * rng.NormFloat64())
	}
	s.centres = make([][]float64, s.Topics)
	for t := range s.centres {
		c := make([]float64, s.Dim)
		for k := range c {
			c[k] = rng.NormFloat64() * s.scale[k]
		}
		s.centres[t] = c
	}
}

// Item returns item i: ID "item-<i>", a cloud, and attributes (a topic
// string, a year number and a boolean) for filtered searches.
func (s *Synth) Item(i int) wpcdb.Item {
	rng := rand.New(rand.NewPCG(s.Seed, uint64(i)+1))
	topic := rng.IntN(s.Topics)
	m := s.MinPoints
	if s.MaxPoints > s.MinPoints {
		m += rng.IntN(s.MaxPoints - s.MinPoints + 1)
	}
	c := s.cloud(rng, topic, m)
	return wpcdb.Item{
		ID:    fmt.Sprintf("item-%d", i),
		Cloud: c,
		Attrs: map[string]any{"topic": fmt.Sprintf("t%d", topic), "year": float64(1990 + rng.IntN(35)), "flag": rng.IntN(100) == 0},
	}
}

// Query returns query j with n points (paper: 77), drawn like an item from a
// random topic but from a stream disjoint from the items'.
func (s *Synth) Query(j, n int) wpcsim.Cloud {
	rng := rand.New(rand.NewPCG(s.Seed^0x9e3779b97f4a7c15, uint64(j)+1))
	return s.cloud(rng, rng.IntN(s.Topics), n)
}

// cloud draws m points around a topic: each cloud has its own offset from
// the topic centre and a few sub-clusters (parts of an image, words of a
// text), each point scattered around one of them.
func (s *Synth) cloud(rng *rand.Rand, topic, m int) wpcsim.Cloud {
	d := s.Dim
	centre := s.centres[topic]
	parts := 1 + m/16
	sub := make([][]float64, parts)
	for p := range sub {
		v := make([]float64, d)
		for k := range v {
			v[k] = centre[k] + 0.6*s.scale[k]*rng.NormFloat64()
		}
		sub[p] = v
	}
	out := wpcsim.Cloud{Dim: d, Weights: make([]float32, m), Points: make([]float32, m*d)}
	for i := 0; i < m; i++ {
		base := sub[rng.IntN(parts)]
		for k := 0; k < d; k++ {
			out.Points[i*d+k] = float32(base[k] + 0.4*s.scale[k]*rng.NormFloat64())
		}
		w := 10 * math.Pow(10, -1.5*rng.Float64()) // ~0.3 .. 10, log-uniform
		if rng.Float64() < 0.4 {
			w = -w
		}
		out.Weights[i] = float32(w)
	}
	return out
}
