package wpcsim_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/wpcsim"
)

func TestValidate(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	ok := wpcsim.Cloud{Dim: 2, Weights: []float32{1, -2}, Points: []float32{1, 0, 0, 1}}
	for _, tc := range []struct {
		name  string
		c     wpcsim.Cloud
		lim   wpcsim.Limits
		field string
		want  string
	}{
		{"no points", wpcsim.Cloud{Dim: 2}, wpcsim.Limits{}, "points", "no points"},
		{"zero dim", wpcsim.Cloud{Dim: 0, Weights: []float32{1}}, wpcsim.Limits{}, "dim", "must be positive"},
		{"wrong dim", ok, wpcsim.Limits{Dim: 3}, "points", "dimension 2 does not match the required 3"},
		{"ragged flat", wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 2, 3}}, wpcsim.Limits{}, "points", "not a whole number of points"},
		{"fewer weights", wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0, 0, 1}}, wpcsim.Limits{}, "weights", "1 weights for 2 points"},
		{"more weights", wpcsim.Cloud{Dim: 2, Weights: []float32{1, 1, 1}, Points: []float32{1, 0, 0, 1}}, wpcsim.Limits{}, "weights", "3 weights for 2 points"},
		{"too many", ok, wpcsim.Limits{MaxPoints: 1}, "points", "2 points exceeds the maximum of 1"},
		{"nan weight", wpcsim.Cloud{Dim: 2, Weights: []float32{1, nan}, Points: []float32{1, 0, 0, 1}}, wpcsim.Limits{}, "weights[1]", "NaN"},
		{"inf weight", wpcsim.Cloud{Dim: 2, Weights: []float32{-inf, 1}, Points: []float32{1, 0, 0, 1}}, wpcsim.Limits{}, "weights[0]", "-Inf"},
		{"nan point", wpcsim.Cloud{Dim: 2, Weights: []float32{1, 1}, Points: []float32{1, 0, 0, nan}}, wpcsim.Limits{}, "points[1][1]", "NaN"},
		{"inf point", wpcsim.Cloud{Dim: 2, Weights: []float32{1, 1}, Points: []float32{inf, 0, 0, 1}}, wpcsim.Limits{}, "points[0][0]", "+Inf"},
		{"zero point", wpcsim.Cloud{Dim: 2, Weights: []float32{1, 1}, Points: []float32{1, 0, 0, 0}}, wpcsim.Limits{}, "points[1]", "zero vector"},
		{"huge raw point", wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{3e19, 0}}, wpcsim.Limits{RawPoints: true}, "points[0]", "too large"},
	} {
		err := tc.c.Validate(tc.lim)
		var ce *wpcsim.FieldError
		if !errors.As(err, &ce) || !errors.Is(err, wpcsim.ErrInvalidCloud) {
			t.Errorf("%s: want *FieldError wrapping ErrInvalidCloud, got %v", tc.name, err)
			continue
		}
		if ce.Field != tc.field || !strings.Contains(ce.Reason, tc.want) {
			t.Errorf("%s: got %q: %q, want %q containing %q", tc.name, ce.Field, ce.Reason, tc.field, tc.want)
		}
	}
	for _, c := range []struct {
		c   wpcsim.Cloud
		lim wpcsim.Limits
	}{
		{ok, wpcsim.Limits{Dim: 2, MaxPoints: 2}},
		{wpcsim.Cloud{Dim: 2, Weights: []float32{1, 1}, Points: []float32{1, 0, 0, 0}}, wpcsim.Limits{RawPoints: true}}, // zero point is fine raw
		{wpcsim.Cloud{Dim: 1, Weights: []float32{0}, Points: []float32{3e18}}, wpcsim.Limits{RawPoints: true}},
	} {
		if err := c.c.Validate(c.lim); err != nil {
			t.Errorf("valid cloud refused: %v", err)
		}
	}
}

func TestNewCloud64(t *testing.T) {
	c, err := wpcsim.NewCloud64(nil, [][]float64{{1, 2}, {3, 4}})
	if err != nil || c.Dim != 2 || len(c.Weights) != 2 || c.Weights[1] != 1 || c.Points[3] != 4 {
		t.Fatalf("NewCloud64 = %+v, %v", c, err)
	}
	for _, tc := range []struct {
		name  string
		w     []float64
		p     [][]float64
		field string
		want  string
	}{
		{"empty", nil, nil, "points", "no points"},
		{"no coords", nil, [][]float64{{}}, "points[0]", "no coordinates"},
		{"ragged", nil, [][]float64{{1, 2}, {3}}, "points[1]", "has 1 coordinates, point 0 has 2"},
		{"weights", []float64{1}, [][]float64{{1}, {2}}, "weights", "1 weights for 2 points"},
		{"overflow point", nil, [][]float64{{1}, {4e38}}, "points[1][0]", "overflows float32"},
		{"overflow weight", []float64{1, -1e39}, [][]float64{{1}, {2}}, "weights[1]", "overflows float32"},
		{"nan", []float64{math.NaN()}, [][]float64{{1}}, "weights[0]", "NaN"},
		{"inf", nil, [][]float64{{math.Inf(-1)}}, "points[0][0]", "-Inf"},
	} {
		_, err := wpcsim.NewCloud64(tc.w, tc.p)
		var ce *wpcsim.FieldError
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Reason, tc.want) {
			t.Errorf("%s: got %v, want %s: …%s…", tc.name, err, tc.field, tc.want)
		}
	}
	// The largest float32 itself is fine; the next float64 up rounds to it.
	if _, err := wpcsim.NewCloud64(nil, [][]float64{{math.MaxFloat32}}); err != nil {
		t.Errorf("MaxFloat32 refused: %v", err)
	}
}

// TestValidateWide: a scorer with a float64 Gram (raw points, gaussian)
// validates items through simd.Norms64, not the float32 dot: the same
// errors must name the same point and coordinate, in every position of a
// cloud whose dimension leaves a SIMD tail, and valid clouds (a zero point,
// a tiny one, one near the norm bound) must pass.
func TestValidateWide(t *testing.T) {
	k, err := wpcsim.ParseKernel("gaussian(1)")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := wpcsim.New(wpcsim.Config{Kernel: k, RawPoints: true})
	if err != nil {
		t.Fatal(err)
	}
	const d, m = 11, 3
	base := func() wpcsim.Cloud {
		c := wpcsim.Cloud{Dim: d, Weights: make([]float32, m), Points: make([]float32, m*d)}
		for i := range c.Points {
			c.Points[i] = float32(i%7) - 3
		}
		for i := range c.Weights {
			c.Weights[i] = 1
		}
		return c
	}
	sc, err := sim.NewScorer(base())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < m; i++ {
		for _, kk := range []int{0, 7, 8, d - 1} {
			for _, tc := range []struct {
				v     float32
				field string
				want  string
			}{
				{float32(math.NaN()), fmt.Sprintf("points[%d][%d]", i, kk), "NaN"},
				{float32(math.Inf(-1)), fmt.Sprintf("points[%d][%d]", i, kk), "-Inf"},
				{3e19, fmt.Sprintf("points[%d]", i), "too large"},
			} {
				c := base()
				c.Points[i*d+kk] = tc.v
				_, err := sc.ScoreBatch([]wpcsim.Cloud{base(), c}, nil)
				var ce *wpcsim.FieldError
				if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(ce.Reason, tc.want) || !strings.Contains(err.Error(), "item 1") {
					t.Errorf("%v at [%d][%d]: got %v, want item 1 %s: …%s…", tc.v, i, kk, err, tc.field, tc.want)
				}
			}
		}
	}
	for _, v := range []float32{0, 1e-25, 3e18} {
		c := base()
		for k := 0; k < d; k++ {
			c.Points[d+k] = 0
		}
		c.Points[d+5] = v
		if _, err := sc.ScoreBatch([]wpcsim.Cloud{c}, nil); err != nil {
			t.Errorf("point of norm %g refused: %v", v, err)
		}
	}
}
