package pbconv

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func TestConfigRoundTrip(t *testing.T) {
	k, _ := wpcsim.ParseKernel("0.5*linear+0.5*imq(0.7)")
	for _, cfg := range []wpcdb.CollectionConfig{
		wpcdb.CollectionConfig{Dim: 8}.WithDefaults(),
		{Dim: 3, MaxPoints: 7, Encoding: collconfig.EncodingBF16, Similarity: wpcsim.Config{Kernel: k, Norm: wpcsim.NormSum, RawPoints: true, Score: wpcsim.ScoreMMD},
			Features: collconfig.Features{Dim: 64, Seed: 9, Imported: true},
			Index:    collconfig.Index{Kind: collconfig.IndexHNSW, GraphAt: 5, HNSWOptions: index.HNSWOptions{M: 8, EfConstruction: 100, EfSearch: 50}}},
	} {
		st := wpcdb.IndexStatus{Kind: "hnsw", InGraph: 2, Buffered: 1}
		got, err := InfoFromPB(InfoToPB(wpcdb.CollectionInfo{Name: "c", Config: cfg, Count: 3, DiskBytes: 10, Index: st}))
		if err != nil || fmt.Sprint(got.Config) != fmt.Sprint(cfg) || got.Count != 3 || got.DiskBytes != 10 || got.Index != st {
			t.Errorf("round trip of %+v: %+v %v", cfg, got, err)
		}
	}
	_, err := ConfigFromPB(&pb.CollectionConfig{Dim: 2, Kernel: "nope", Norm: 5, Encoding: 9, Score: 4})
	for _, field := range []string{"kernel:", "norm:", "encoding:", "score:"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
}

func TestItemRoundTrip(t *testing.T) {
	it := wpcdb.Item{ID: "a", Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1, -2}, Points: []float32{1, 2, 3, 4}},
		Attrs: map[string]any{"s": "x", "n": 2.5, "b": true}}
	p, err := ItemToPB(it)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ItemFromPB(p)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(it) {
		t.Fatalf("%+v %v", got, err)
	}
	// Empty weights mean all 1, as in the JSON format.
	c, err := CloudFromPB(&pb.Cloud{Dim: 2, Points: []float32{1, 2, 3, 4}})
	if err != nil || fmt.Sprint(c.Weights) != "[1 1]" {
		t.Errorf("default weights %v, %v", c.Weights, err)
	}
	// Packed points: float32 and float16 (1, -2, 0.5, 3 in binary16).
	c, err = CloudFromPB(&pb.Cloud{Dim: 2, PointsData: PackPoints([]float32{1, -2, 0.5, 3})})
	if err != nil || fmt.Sprint(c.Points, c.Weights) != "[1 -2 0.5 3] [1 1]" {
		t.Errorf("float32 points_data: %v %v, %v", c.Points, c.Weights, err)
	}
	half := []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x00, 0x42}
	c, err = CloudFromPB(&pb.Cloud{Dim: 2, PointsData: half, PointsDtype: pb.Dtype_DTYPE_FLOAT16})
	if err != nil || fmt.Sprint(c.Points) != "[1 -2 0.5 3]" {
		t.Errorf("float16 points_data: %v, %v", c.Points, err)
	}
	for _, tc := range []struct {
		c    *pb.Cloud
		want string
	}{
		{&pb.Cloud{Dim: 2, Points: []float32{1, 2}, PointsData: half}, "set one, not both"},
		{&pb.Cloud{Dim: 3, PointsData: half}, "points_data: 8 bytes is not a whole number of points of 3 × 4 bytes"},
		{&pb.Cloud{Dim: 0, PointsData: half}, "dim must be positive"},
		{&pb.Cloud{Dim: 2, PointsData: half, PointsDtype: 9}, "points_dtype: unknown dtype 9"},
	} {
		if _, err := CloudFromPB(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if _, err := ItemFromPB(&pb.Item{Id: "a", Attrs: map[string]*structpb.Value{"z": {}, "a": nil}}); err == nil || !strings.Contains(err.Error(), "attrs.a") {
		t.Errorf("unset attribute: %v", err)
	}
}
