package wpcsim_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/wpcsim"
)

func TestParseKernel(t *testing.T) {
	for _, tc := range []struct {
		in, canon string
	}{
		{"linear", "linear"},
		{"  LINEAR ", "linear"},
		{"gaussian(0.5)", "gaussian(0.5)"},
		{"imq(2)", "imq(2)"},
		{"0.667*linear+0.333*gaussian(0.5)", "0.667*linear+0.333*gaussian(0.5)"},
		{" 0.667 * linear\t+ 0.333*gaussian ( .5 ) ", "0.667*linear+0.333*gaussian(0.5)"},
		{"1*linear", "linear"},
		{"1e-3*imq(1e2)+gaussian(3)", "0.001*imq(100)+gaussian(3)"},
		{"linear+linear", "linear+linear"},
		{"maxsim", "maxsim"},
		{"2.5*MaxSim", "2.5*maxsim"},
	} {
		k, err := wpcsim.ParseKernel(tc.in)
		if err != nil {
			t.Errorf("ParseKernel(%q): %v", tc.in, err)
			continue
		}
		if got := k.String(); got != tc.canon {
			t.Errorf("ParseKernel(%q).String() = %q, want %q", tc.in, got, tc.canon)
		}
		back, err := wpcsim.ParseKernel(k.String())
		if err != nil || !reflect.DeepEqual(back, k) {
			t.Errorf("canonical %q does not parse back: %v %+v", k.String(), err, back)
		}
		if err := k.Validate(); err != nil {
			t.Errorf("%q: parsed kernel fails Validate: %v", tc.in, err)
		}
	}
	def, _ := wpcsim.ParseKernel(wpcsim.DefaultKernelSpec)
	if !reflect.DeepEqual(def, wpcsim.DefaultKernel()) {
		t.Errorf("DefaultKernel %+v != parsed spec %+v", wpcsim.DefaultKernel(), def)
	}
}

func TestParseKernelErrors(t *testing.T) {
	for _, tc := range []struct {
		in     string
		column int
		want   string
	}{
		{"", 1, "expected a kernel"},
		{"   ", 4, "expected a kernel"},
		{"linaer", 1, `unknown kernel "linaer"`},
		{"0.5*linaer", 5, `unknown kernel "linaer"`},
		{"linear+", 8, "expected a kernel"},
		{"linear gaussian(1)", 8, `expected "+" or end of spec`},
		{"gaussian", 9, "needs a parameter"},
		{"gaussian()", 10, "expected a number for σ"},
		{"gaussian(0)", 10, "σ must be > 0"},
		{"gaussian(-1)", 10, "σ must be > 0"},
		{"imq(0)", 5, "c must be > 0"},
		{"imq(1e999)", 5, "not a finite number"},
		{"gaussian(0.5", 13, `expected ")"`},
		{"gaussian(0.5]", 13, `expected ")"`},
		{"linear(1)", 7, "linear takes no parameter"},
		{"0*linear", 1, "α must be > 0"},
		{"-0.5*linear", 1, "α must be > 0"},
		{"0.5 linear", 5, `expected "*" after α`},
		{"0.5*", 5, "expected a kernel"},
		{"2e*linear", 1, "not a finite number"},
		{"maxsim+linear", 8, "maxsim cannot be summed"},
		{"linear+maxsim", 8, "maxsim cannot be summed"},
		{"maxsim(1)", 7, "maxsim takes no parameter"},
		{"linear;", 7, `expected "+" or end of spec, found ";"`},
		{"gaussian(1e-30)", 10, "σ must be in [0.001, 1e+06]"},
		{"imq(0.0009)", 5, "c must be in [0.001, 1e+06]"},
		{"imq(1e7)", 5, "c must be in [0.001, 1e+06]"},
		{"2e6*linear", 1, "α must be in [1e-06, 1e+06]"},
		{"1e-300*linear", 1, "α must be in [1e-06, 1e+06]"},
		{"linear+9e-7*imq(1)", 8, "α must be in [1e-06, 1e+06]"},
		{strings.Repeat("linear+", 16) + "linear", 16*7 + 1, "more than 16 terms"},
		{strings.Repeat(" ", 2000) + "linear", 1025, "spec of 2006 bytes exceeds the maximum of 1024"},
	} {
		_, err := wpcsim.ParseKernel(tc.in)
		var se *wpcsim.SpecError
		if !errors.As(err, &se) {
			t.Errorf("ParseKernel(%q): want *SpecError, got %v", tc.in, err)
			continue
		}
		if !errors.Is(err, wpcsim.ErrInvalidKernel) {
			t.Errorf("ParseKernel(%q): error does not wrap ErrInvalidKernel", tc.in)
		}
		if se.Column != tc.column || !strings.Contains(se.Msg, tc.want) {
			t.Errorf("ParseKernel(%q): got column %d %q, want column %d containing %q", tc.in, se.Column, se.Msg, tc.column, tc.want)
		}
	}
}

func FuzzParseKernel(f *testing.F) {
	for _, s := range []string{"linear", "0.667*linear+0.333*gaussian(0.5)", "imq(0.5)+2*gaussian(1e-3)", "maxsim", "gaussian(", "1e*", "3*maxsim", " + "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := wpcsim.ParseKernel(s)
		if err != nil {
			var se *wpcsim.SpecError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(s)+1 {
				t.Fatalf("ParseKernel(%q): bad error %v", s, err)
			}
			return
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("ParseKernel(%q) accepted an invalid kernel: %v", s, err)
		}
		back, err := wpcsim.ParseKernel(k.String())
		if err != nil || !reflect.DeepEqual(back, k) {
			t.Fatalf("%q: canonical %q does not parse back: %v", s, k.String(), err)
		}
	})
}
