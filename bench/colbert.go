package bench

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Colbert generates ColBERT-shaped documents and queries: per-token
// embeddings of dimension 128, documents of 60–300 tokens, queries of 32
// tokens with unit weights (ColBERT's query side). Tokens come from a
// vocabulary whose embeddings cluster in semantic groups; a token's
// occurrences are near duplicates of its embedding, shifted a little by the
// document's topic (context); documents draw most tokens from their
// topic's favoured ones and the rest from the whole vocabulary with a Zipf
// long tail (frequent tokens occur everywhere, most occur rarely). Item i
// is a pure function of (Seed, i). Make one with NewColbert; it is then
// safe for concurrent use.
type Colbert struct {
	Seed                 uint64
	Dim                  int // 128
	MinPoints, MaxPoints int // 60, 300
	QueryPoints          int // 32
	Vocab                int // tokens (8,192)
	Groups               int // semantic groups of tokens (512)
	Topics               int // document topics (256)
	TopicTokens          int // tokens a topic favours (48)

	tokens [][]float64 // Vocab × Dim
	topics []colbertTopic
}

type colbertTopic struct {
	tokens []int
	shift  []float64 // the context's offset of every token in the topic
}

// ColbertShape is the default ColBERT shape.
var ColbertShape = Colbert{Dim: 128, MinPoints: 60, MaxPoints: 300, QueryPoints: 32, Vocab: 8192, Groups: 512, Topics: 256, TopicTokens: 48}

// NewColbert returns a generator of the given shape and seed.
func NewColbert(shape Colbert, seed uint64) *Colbert {
	c := shape
	c.Seed = seed
	c.init()
	return &c
}

func (c *Colbert) init() {
	rng := rand.New(rand.NewPCG(c.Seed, 0xc01))
	gauss := func(scale float64) []float64 {
		v := make([]float64, c.Dim)
		for k := range v {
			v[k] = scale * rng.NormFloat64()
		}
		return v
	}
	groups := make([][]float64, c.Groups)
	for g := range groups {
		groups[g] = gauss(1)
	}
	c.tokens = make([][]float64, c.Vocab)
	for t := range c.tokens {
		v := gauss(0.8)
		for k, x := range groups[rng.IntN(c.Groups)] {
			v[k] += x
		}
		c.tokens[t] = v
	}
	c.topics = make([]colbertTopic, c.Topics)
	for i := range c.topics {
		tp := colbertTopic{shift: gauss(0.35)}
		for range c.TopicTokens {
			tp.tokens = append(tp.tokens, c.zipf(rng))
		}
		c.topics[i] = tp
	}
}

// zipf draws a token with probability ∝ 1/(rank+1).
func (c *Colbert) zipf(rng *rand.Rand) int {
	return min(c.Vocab-1, int(math.Exp(rng.Float64()*math.Log(float64(c.Vocab+1))))-1)
}

// cloud draws m token embeddings of a topic with unit weights.
func (c *Colbert) cloud(rng *rand.Rand, topic, m int) wpcsim.Cloud {
	tp := c.topics[topic]
	d := c.Dim
	out := wpcsim.Cloud{Dim: d, Weights: make([]float32, m), Points: make([]float32, m*d)}
	for i := range m {
		tok := c.zipf(rng)
		if rng.Float64() < 0.7 {
			tok = tp.tokens[rng.IntN(len(tp.tokens))]
		}
		for k := range d {
			out.Points[i*d+k] = float32(c.tokens[tok][k] + tp.shift[k] + 0.3*rng.NormFloat64())
		}
		out.Weights[i] = 1
	}
	return out
}

// Item returns document i: ID "doc-<i>", its cloud, and attributes (topic,
// year, flag) for filtered searches, like Synth's.
func (c *Colbert) Item(i int) (wpcdb.Item, error) {
	rng := rand.New(rand.NewPCG(c.Seed, uint64(i)+1))
	topic := rng.IntN(c.Topics)
	m := c.MinPoints + rng.IntN(c.MaxPoints-c.MinPoints+1)
	return wpcdb.Item{
		ID:    fmt.Sprintf("doc-%d", i),
		Cloud: c.cloud(rng, topic, m),
		Attrs: map[string]any{"topic": fmt.Sprintf("t%d", topic), "year": float64(1990 + rng.IntN(35)), "flag": rng.IntN(100) == 0},
	}, nil
}

// Shape makes a *Colbert a Source.
func (c *Colbert) Shape() (dim, maxPoints int) { return c.Dim, c.MaxPoints }

// Query returns query j: QueryPoints tokens of a random topic, from a
// stream disjoint from the documents'.
func (c *Colbert) Query(j int) wpcsim.Cloud {
	rng := rand.New(rand.NewPCG(c.Seed^0x9e3779b97f4a7c15, uint64(j)+1))
	return c.cloud(rng, rng.IntN(c.Topics), c.QueryPoints)
}
