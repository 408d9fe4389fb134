package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wpcdb/wpcdb/internal/idx"
)

// writeToyMNIST writes a tiny MNIST-like set: class c is a bar at row 3c+2
// of a 28×28 image, with a little per-image jitter.
func writeToyMNIST(t *testing.T, dir, prefix string, n int) {
	t.Helper()
	img := make([]byte, n*28*28)
	lab := make([]byte, n)
	for i := 0; i < n; i++ {
		c := i % 5
		lab[i] = byte(c)
		row := 3*c + 2 + i%2
		for x := 4; x < 24; x++ {
			img[i*784+row*28+x] = byte(150 + (i*7+x)%100)
		}
	}
	for _, f := range []struct {
		kind string
		dims []int
		data []byte
	}{{"images-idx3", []int{n, 28, 28}, img}, {"labels-idx1", []int{n}, lab}} {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if err := idx.Write(zw, f.dims, f.data); err != nil {
			t.Fatal(err)
		}
		zw.Close()
		if err := os.WriteFile(filepath.Join(dir, prefix+"-"+f.kind+"-ubyte.gz"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFMNISTToy(t *testing.T) {
	dir := t.TempDir()
	writeToyMNIST(t, dir, "train", 60)
	writeToyMNIST(t, dir, "t10k", 20)
	rep, err := RunFMNIST(context.Background(), FMNISTConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"pixels", "cloud-linear", "cloud-kernel"} {
		if acc, ok := rep.Accuracy[m]; !ok || acc < 0.8 {
			t.Errorf("%s: accuracy %v on a toy set", m, acc)
		}
	}
	if rep.ExactCheck > 1e-4 {
		t.Errorf("blocked scores differ from wpcsim's by %g", rep.ExactCheck)
	}
	if rep.Train != 60 || rep.Test != 20 {
		t.Errorf("sizes %d %d", rep.Train, rep.Test)
	}
}

func TestTopIndicesAndVote(t *testing.T) {
	if got := topIndices([]float64{1, 5, 3, 5, 0, 4}, 3); !slices.Equal(got, []int32{1, 3, 5}) {
		t.Fatalf("topIndices = %v", got)
	}
	labels := []byte{0, 1, 1, 2, 2}
	// Labels 1 and 2 tie 2–2: the tie goes to 2, whose member ranks first.
	if v := vote([]int32{3, 1, 2, 4, 0}, labels, 4); v != 2 {
		t.Fatalf("vote = %d", v)
	}
}
