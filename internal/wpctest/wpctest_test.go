package wpctest

import (
	"math"
	"testing"
)

// TestOracleByHand checks the oracle against values worked out by hand, so
// that a shared mistake in the oracle and the code under test cannot pass.
func TestOracleByHand(t *testing.T) {
	// Q: weight 2 at (3,4) → q̂ = (0.6, 0.8). X: weights 1, -1 at (1,0), (0,2) → (1,0), (0,1).
	q := Cloud{Dim: 2, Weights: []float32{2}, Points: []float32{3, 4}}
	x := Cloud{Dim: 2, Weights: []float32{1, -1}, Points: []float32{1, 0, 0, 2}}
	// <q̂,x̂1> = 0.6, <q̂,x̂2> = 0.8; ||q̂-x̂1||² = 0.8, ||q̂-x̂2||² = 0.4.
	for _, tc := range []struct {
		o       Oracle
		g, mass float64
	}{
		{Oracle{Terms: []Term{{"linear", 1, 0}}, Sum: true}, 2 * (0.6 - 0.8), 4},
		{Oracle{Terms: []Term{{"linear", 1, 0}}}, 2 * (0.6 - 0.8) / 2, 2},
		{Oracle{Terms: []Term{{"gaussian", 0.5, 1}}, Sum: true}, 0.5 * 2 * (math.Exp(-0.4) - math.Exp(-0.2)), 0.5 * 4},
		{Oracle{Terms: []Term{{"imq", 1, 0.5}}, Sum: true}, 2 * (0.5/math.Sqrt(0.25+0.8) - 0.5/math.Sqrt(0.25+0.4)), 4},
		{Oracle{Terms: []Term{{"maxsim", 1, 0}}}, 2 * 0.8, 2},
		// Raw points: <(3,4),(1,0)> = 3, <(3,4),(0,2)> = 8; linear mass 2·5·(1+2).
		{Oracle{Terms: []Term{{"linear", 1, 0}}, Sum: true, Raw: true}, 2 * (3 - 8), 30},
		{Oracle{Terms: []Term{{"maxsim", 1, 0}}, Raw: true}, 2 * 8, 2 * 5 * 2},
	} {
		g, m := tc.o.G(q, x)
		if math.Abs(g-tc.g) > 1e-12 || math.Abs(m-tc.mass) > 1e-12 {
			t.Errorf("%+v: got g=%v m=%v, want g=%v m=%v", tc.o, g, m, tc.g, tc.mass)
		}
	}
}

func TestRandomCloudLooksLearned(t *testing.T) {
	rng := NewRand(1)
	c := RandomCloud(rng, 2000, 8, Shape{})
	var neg int
	var maxAbs float64
	for _, w := range c.Weights {
		if w < 0 {
			neg++
		}
		maxAbs = math.Max(maxAbs, math.Abs(float64(w)))
	}
	if frac := float64(neg) / 2000; frac < 0.33 || frac > 0.5 {
		t.Errorf("negative fraction %v, want between 1/3 and 1/2", frac)
	}
	if maxAbs < 5 || maxAbs > 10 {
		t.Errorf("max |w| = %v, want a few units up to 10", maxAbs)
	}
}
