package wpcdb

import "testing"

// TestCalibrationSampleSize: the sample keeps the scaled depth at 2·K or
// more up to its cap.
func TestCalibrationSampleSize(t *testing.T) {
	for _, tc := range []struct{ count, depth, want int }{
		{1_000, 100, 10_000},     // floor (a smaller collection is read whole)
		{100_000, 100, 20_000},   // depth 100 · 20,000 / 100,000 = 20
		{100_000, 400, 10_000},   // maxsim's FDE depth: 10,000 already gives 40
		{250_000, 100, 50_000},   // the cap reached exactly
		{1_000_000, 100, 50_000}, // capped: the scaled depth is floored at 20
		{100_001, 100, 20_001},   // rounded up, never down
		{50_000, 50, 20_000},     // maxsim's point depth: 10,000 would scale it to 10
	} {
		if got := calibrationSampleSize(tc.count, tc.depth); got != tc.want {
			t.Errorf("calibrationSampleSize(%d, %d) = %d, want %d", tc.count, tc.depth, got, tc.want)
		}
		if n := calibrationSampleSize(tc.count, tc.depth); n < 50_000 && tc.count > n && tc.depth*n/tc.count < 20 {
			t.Errorf("count %d depth %d: sample %d scales the depth below 20", tc.count, tc.depth, n)
		}
	}
}
