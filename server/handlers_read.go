package server

import (
	"context"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// The handlers of unary upsert, attribute updates and reads of many items
// (GetMany, Scroll, Count).

func (s *service) UpsertBatch(ctx context.Context, req *pb.UpsertBatchRequest) (*pb.UpsertBatchResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	release, err := s.admit(ctx, batchFloats(c, req.GetItems()))
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := upsertBatch(ctx, c, &pb.UpsertRequest{Collection: req.GetCollection(), Items: req.GetItems(), SkipInvalid: req.GetSkipInvalid()})
	if err != nil {
		return nil, err
	}
	s.metrics.ingested(c.Name(), res.GetWritten())
	return &pb.UpsertBatchResponse{Written: res.GetWritten(), Skipped: res.GetSkipped()}, nil
}

func (s *service) UpdateAttrs(ctx context.Context, req *pb.UpdateAttrsRequest) (*pb.UpdateAttrsResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	set, err := pbconv.AttrsFromPB(req.GetSet())
	if err != nil {
		return nil, invalid("set: %v", err)
	}
	attrs, err := c.UpdateAttrs(ctx, req.GetId(), set, req.GetUnset())
	if err != nil {
		return nil, err
	}
	out, err := pbconv.AttrsToPB(attrs)
	if err != nil {
		return nil, err
	}
	return &pb.UpdateAttrsResponse{Attrs: out}, nil
}

func (s *service) GetMany(ctx context.Context, req *pb.GetManyRequest) (*pb.GetManyResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	items, missing, err := c.GetMany(ctx, req.GetIds())
	if err != nil {
		return nil, err
	}
	out := &pb.GetManyResponse{Items: make([]*pb.Item, len(items)), Missing: missing}
	for i, it := range items {
		if out.Items[i], err = pbconv.ItemToPB(it); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *service) Scroll(ctx context.Context, req *pb.ScrollRequest) (*pb.ScrollResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	page, err := c.Scroll(ctx, wpcdb.ScrollOptions{Filter: req.GetFilter(), Cursor: req.GetCursor(), Limit: int(req.GetLimit()), WithClouds: req.GetWithClouds()})
	if err != nil {
		return nil, err
	}
	out := &pb.ScrollResponse{Items: make([]*pb.Item, len(page.Items)), NextCursor: page.NextCursor}
	for i, it := range page.Items {
		p, err := pbconv.ItemToPB(it)
		if err != nil {
			return nil, err
		}
		if !req.GetWithClouds() {
			p.Cloud = nil
		}
		out.Items[i] = p
	}
	return out, nil
}

func (s *service) Count(ctx context.Context, req *pb.CountRequest) (*pb.CountResponse, error) {
	c, err := s.collection(req.GetCollection())
	if err != nil {
		return nil, err
	}
	n, err := c.CountFilter(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &pb.CountResponse{Count: uint64(n)}, nil
}
