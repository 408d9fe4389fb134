package demodata

import "testing"

func TestFashionMNIST(t *testing.T) {
	train, test, err := FashionMNIST()
	if err != nil {
		t.Fatal(err)
	}
	if len(train.Pixels) != 3000 || len(test.Pixels) != 100 || len(train.Pixels[0]) != 784 {
		t.Fatalf("got %d train, %d test images of %d bytes", len(train.Pixels), len(test.Pixels), len(train.Pixels[0]))
	}
	counts := make([]int, 10)
	for _, l := range train.Labels {
		counts[l]++
	}
	for c, n := range counts {
		if n < 200 || n > 400 {
			t.Errorf("class %d (%s): %d of 3,000 images; the subset should be roughly balanced", c, Classes[c], n)
		}
	}
}
