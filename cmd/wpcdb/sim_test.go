package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// runCLI runs the command line in-process and returns its streams and code.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func writeCloud(t *testing.T, dir, name string, c wpctest.Cloud) string {
	t.Helper()
	path := filepath.Join(dir, name)
	line := cloudjson.AppendJSON(nil, cloudjson.Record{Cloud: wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: c.Points}})
	if err := os.WriteFile(path, line, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSimMatchesOracle is the core issue's acceptance test: the printed
// score agrees with an independent float64 implementation of PAPER.md within
// its tolerance, over many shapes, every kernel, both normalizations, points
// normalized or not, and every score mode.
func TestSimMatchesOracle(t *testing.T) {
	const seed = 5150
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	dir := t.TempDir()
	type shape struct{ n, m, d int }
	shapes := []shape{{1, 1, 1}, {3, 5, 2}, {7, 4, 31}, {16, 8, 64}}
	kernels := []string{"linear", "gaussian(0.5)", "imq(0.5)", wpcsim.DefaultKernelSpec, "0.5*gaussian(2)+imq(1)+3*linear", "maxsim"}
	n := 0
	for _, spec := range kernels {
		k, _ := wpcsim.ParseKernel(spec)
		modes := []string{"inner", "cosine", "mmd"}
		if k.IsMaxSim() {
			modes = modes[:1]
		}
		for _, norm := range []string{"mean", "sum"} {
			for _, raw := range []bool{false, true} {
				for _, mode := range modes {
					o := wpctest.Oracle{Sum: norm == "sum", Raw: raw}
					for _, term := range k.Terms {
						o.Terms = append(o.Terms, wpctest.Term{Kind: term.Kind.String(), Alpha: term.Alpha, Param: term.Param})
					}
					sh := shapes[n%len(shapes)]
					n++
					q := wpctest.RandomCloud(rng, sh.n, sh.d, wpctest.Shape{})
					x := wpctest.RandomCloud(rng, sh.m, sh.d, wpctest.Shape{})
					qp, xp := writeCloud(t, dir, "q.json", q), writeCloud(t, dir, "x.json", x)
					args := []string{"sim", "--kernel", spec, "--norm", norm, "--score", mode, qp, xp}
					if raw {
						args = append(args, "--no-normalize")
					}
					stdout, stderr, code := runCLI(t, "", args...)
					if code != 0 {
						t.Fatalf("%v: exit %d: %s", args, code, stderr)
					}
					got, err := strconv.ParseFloat(strings.TrimSpace(stdout), 64)
					if err != nil || strings.Count(stdout, "\n") != 1 {
						t.Fatalf("%v: output %q is not one number", args, stdout)
					}
					if msg := o.CheckScore(mode, q, x, got); msg != "" {
						t.Errorf("seed %d %v shape %v: %s", seed, args[1:8], sh, msg)
					}
				}
			}
		}
	}
	// The paper's shape, the paper's kernel, every mode.
	if !testing.Short() {
		q := wpctest.RandomCloud(rng, 77, 512, wpctest.Shape{})
		x := wpctest.RandomCloud(rng, 197, 512, wpctest.Shape{})
		qp, xp := writeCloud(t, dir, "q.json", q), writeCloud(t, dir, "x.json", x)
		k := wpcsim.DefaultKernel()
		o := wpctest.Oracle{}
		for _, term := range k.Terms {
			o.Terms = append(o.Terms, wpctest.Term{Kind: term.Kind.String(), Alpha: term.Alpha, Param: term.Param})
		}
		for _, mode := range []string{"inner", "cosine", "mmd"} {
			stdout, stderr, code := runCLI(t, "", "sim", "--score", mode, qp, xp)
			if code != 0 {
				t.Fatalf("paper shape %s: exit %d: %s", mode, code, stderr)
			}
			got, _ := strconv.ParseFloat(strings.TrimSpace(stdout), 64)
			if msg := o.CheckScore(mode, q, x, got); msg != "" {
				t.Errorf("seed %d paper shape %s: %s", seed, mode, msg)
			}
		}
	}
}

func TestSimOutputAndFlags(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q.json")
	x := filepath.Join(dir, "x.json")
	os.WriteFile(q, []byte(`{"weights":[1,-2],"points":[[1,0,0],[0,1,0]]}`), 0o644)
	os.WriteFile(x, []byte(`{"points":[[1,1,0],[0,0,1]]}`), 0o644)
	plain, _, code := runCLI(t, "", "sim", q, x)
	if code != 0 {
		t.Fatal("sim failed")
	}
	// Global flags are accepted before and after the command.
	for _, args := range [][]string{{"--json", "sim", q, x}, {"sim", q, x, "--json"}, {"sim", "--json", q, x}} {
		stdout, stderr, code := runCLI(t, "", args...)
		var out struct {
			Score  float64 `json:"score"`
			Kernel string  `json:"kernel"`
			Mode   string  `json:"score_mode"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
			t.Fatalf("%v: exit %d, %q %q", args, code, stdout, stderr)
		}
		if strconv.FormatFloat(out.Score, 'g', -1, 64) != strings.TrimSpace(plain) || out.Kernel != wpcsim.DefaultKernelSpec || out.Mode != "inner" {
			t.Errorf("%v: %+v vs plain %q", args, out, plain)
		}
	}
	// Standard input.
	data, _ := os.ReadFile(x)
	stdout, _, code := runCLI(t, string(data), "sim", q, "-")
	if code != 0 || stdout != plain {
		t.Errorf("stdin item: %q vs %q", stdout, plain)
	}
	// Identical clouds: mmd is exactly a non-negative number, cosine ~1.
	stdout, _, _ = runCLI(t, "", "sim", "--score", "mmd", q, q)
	if d, err := strconv.ParseFloat(strings.TrimSpace(stdout), 64); err != nil || d < 0 || d > 1e-3 {
		t.Errorf("mmd(Q,Q) = %q", stdout)
	}
}

func TestSimErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	q := write("q.json", `{"weights":[1,-2],"points":[[1,0,0],[0,1,0]]}`)
	x := write("x.json", `{"points":[[1,1,0],[0,0,1]]}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", q}, "sim needs QUERY.json and ITEM.json"},
		{[]string{"sim", "-", "-"}, "only one of QUERY and ITEM"},
		{[]string{"sim", q, filepath.Join(dir, "missing.json")}, "item: open"},
		{[]string{"sim", "--kernel", "gaussian(0)", q, x}, "column 10: σ must be > 0"},
		{[]string{"sim", "--kernel", "cubic", q, x}, `unknown kernel "cubic"`},
		{[]string{"sim", "--kernel", "maxsim", "--score", "cosine", q, x}, "score mode cosine is not defined for maxsim"},
		{[]string{"sim", "--norm", "avg", q, x}, `norm "avg"`},
		{[]string{"sim", "--score", "l2", q, x}, `score mode "l2"`},
		{[]string{"sim", "--nope", q, x}, "unknown flag: --nope"},
		{[]string{"sim", q, write("dim.json", `{"points":[[1,1]]}`)}, "points: dimension 2 does not match the required 3"},
		{[]string{"sim", q, write("zero.json", `{"points":[[1,1,0],[0,0,0]]}`)}, "points[1]: zero vector"},
		{[]string{"sim", write("big.json", `{"points":[[1,1e39,0]]}`), x}, "query " + filepath.Join(dir, "big.json") + ": points[0][1]: value 1e+39 overflows float32"},
		{[]string{"sim", q, write("rag.json", `{"points":[[1,1,0],[1]]}`)}, "points[1]: has 1 coordinates"},
		{[]string{"sim", q, write("w.json", `{"points":[[1,1,0]],"weights":[1,2]}`)}, "weights: 2 weights for 1 points"},
		{[]string{"sim", q, write("empty.json", `{"points":[]}`)}, "no points"},
		{[]string{"sim", q, write("bad.json", `{"points":[[1,1,0]]`)}, "malformed cloud"},
	} {
		stdout, stderr, code := runCLI(t, "", tc.args...)
		if code == 0 || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q: want failure and empty stdout", tc.args, code, stdout)
		}
		if !strings.HasPrefix(stderr, "wpcdb: ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr %q does not contain %q", tc.args, stderr, tc.want)
		}
	}
	// With normalization off, a zero point is a valid point.
	zero := write("zero2.json", `{"points":[[1,1,0],[0,0,0]]}`)
	if _, stderr, code := runCLI(t, "", "sim", "--no-normalize", q, zero); code != 0 {
		t.Errorf("--no-normalize with a zero point: %s", stderr)
	}
}

func TestSimRandomFeatures(t *testing.T) {
	dir := t.TempDir()
	rng := wpctest.NewRand(12)
	q := wpctest.RandomCloud(rng, 6, 16, wpctest.Shape{})
	x := wpctest.RandomCloud(rng, 9, 16, wpctest.Shape{})
	qp, xp := writeCloud(t, dir, "q.json", q), writeCloud(t, dir, "x.json", x)
	num := func(args ...string) float64 {
		t.Helper()
		stdout, stderr, code := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(stdout), 64)
		if err != nil {
			t.Fatalf("%v: %q", args, stdout)
		}
		return v
	}
	// Linear: the estimate is exact.
	exact := num("sim", "--kernel", "linear", qp, xp)
	_, linMass := wpctest.Oracle{Terms: []wpctest.Term{{Kind: "linear", Alpha: 1}}}.G(q, x)
	if est := num("sim", "--kernel", "linear", "--rff-dim", "8", qp, xp); !wpctest.Within(est, exact, linMass) {
		t.Errorf("linear estimate %v, exact %v", est, exact)
	}
	// Gaussian: a large D gets close, and the seed matters.
	exact = num("sim", "--kernel", "gaussian(1)", qp, xp)
	a := num("sim", "--kernel", "gaussian(1)", "--rff-dim", "16384", qp, xp)
	b := num("sim", "--kernel", "gaussian(1)", "--rff-dim", "16384", "--rff-seed", "7", qp, xp)
	if a == b {
		t.Error("different seeds gave the same estimate")
	}
	o := wpctest.Oracle{Terms: []wpctest.Term{{Kind: "gaussian", Alpha: 1, Param: 1}}}
	_, mass := o.G(q, x)
	if math.Abs(a-exact) > 0.05*mass || math.Abs(b-exact) > 0.05*mass {
		t.Errorf("gaussian estimates %v, %v far from exact %v (mass %v)", a, b, exact, mass)
	}
	for _, args := range [][]string{{"sim", "--rff-dim", "0", qp, xp}, {"sim", "--kernel", "maxsim", "--rff-dim", "8", qp, xp}} {
		if stdout, stderr, code := runCLI(t, "", args...); code == 0 || stdout != "" || stderr == "" {
			t.Errorf("%v: want an error", args)
		}
	}
}
