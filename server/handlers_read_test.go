package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

func str(s string) *structpb.Value { return structpb.NewStringValue(s) }

// TestIssue18Calls runs the unary upsert (points packed as bytes), search
// with attributes, offset and k = 0, GetMany, Scroll, Count, UpdateAttrs
// and Rerank's missing list over the wire.
func TestIssue18Calls(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	createPB(t, ts.cli, ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	var items []*pb.Item
	for i, id := range []string{"d", "a", "c", "b", "e"} {
		x := float32(i + 1)
		items = append(items, &pb.Item{Id: id, Cloud: &pb.Cloud{Dim: 2, PointsData: pbconv.PackPoints([]float32{x, 1, 1, x})},
			Attrs: map[string]*structpb.Value{"color": str([]string{"red", "blue"}[i%2])}})
	}
	up, err := ts.cli.UpsertBatch(ctx, &pb.UpsertBatchRequest{Collection: "c", Items: items})
	if err != nil || up.GetWritten() != 5 {
		t.Fatalf("UpsertBatch: %v, %v", up, err)
	}
	q := &pb.Cloud{Dim: 2, Points: []float32{1, 1}}
	all, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: "c", Query: q, Exact: true})
	if err != nil || len(all.GetHits()) != 5 || all.Hits[0].Attrs != nil {
		t.Fatalf("k = 0 search: %v, %v", all, err)
	}
	page, err := ts.cli.Search(ctx, &pb.SearchRequest{Collection: "c", Query: q, K: 2, Offset: 1, Exact: true, WithAttrs: true, Filter: `color = "red"`})
	if err != nil || len(page.GetHits()) != 2 {
		t.Fatalf("paged search: %v, %v", page, err)
	}
	for _, h := range page.Hits {
		if h.Attrs["color"].GetStringValue() != "red" {
			t.Errorf("hit %s attrs %v", h.Id, h.Attrs)
		}
	}
	gm, err := ts.cli.GetMany(ctx, &pb.GetManyRequest{Collection: "c", Ids: []string{"b", "x", "a"}})
	if err != nil || len(gm.Items) != 2 || gm.Items[0].Id != "b" || !slices.Equal(gm.Missing, []string{"x"}) {
		t.Fatalf("GetMany: %v, %v", gm, err)
	}
	if got := gm.Items[1].Cloud.Points; !slices.Equal(got, []float32{2, 1, 1, 2}) {
		t.Errorf("a's points %v: packed points did not arrive as sent", got)
	}
	var ids []string
	cursor := ""
	for {
		sr, err := ts.cli.Scroll(ctx, &pb.ScrollRequest{Collection: "c", Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range sr.Items {
			if it.Cloud != nil || it.Attrs["color"] == nil {
				t.Errorf("scroll item %v: want attributes and no cloud", it)
			}
			ids = append(ids, it.Id)
		}
		if cursor = sr.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(ids, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("scroll: %v", ids)
	}
	if n, err := ts.cli.Count(ctx, &pb.CountRequest{Collection: "c", Filter: `color = "blue"`}); err != nil || n.Count != 2 {
		t.Fatalf("count blue: %v, %v", n, err)
	}
	ua, err := ts.cli.UpdateAttrs(ctx, &pb.UpdateAttrsRequest{Collection: "c", Id: "d", Set: map[string]*structpb.Value{"color": str("blue")}})
	if err != nil || ua.Attrs["color"].GetStringValue() != "blue" {
		t.Fatalf("UpdateAttrs: %v, %v", ua, err)
	}
	if n, err := ts.cli.Count(ctx, &pb.CountRequest{Collection: "c", Filter: `color = "blue"`}); err != nil || n.Count != 3 {
		t.Fatalf("count blue after the update: %v, %v", n, err)
	}
	rr, err := ts.cli.Rerank(ctx, &pb.RerankRequest{Collection: "c", Query: q, Ids: []string{"a", "zz", "b"}, WithAttrs: true})
	if err != nil || len(rr.Hits) != 2 || !slices.Equal(rr.Missing, []string{"zz"}) || rr.Hits[0].Attrs == nil {
		t.Fatalf("Rerank: %v, %v", rr, err)
	}
}
