package wpcdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/wpcdb/wpcdb/query"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// DefaultK is the number of hits of a search that gives K = 0 (proto3's
// "unset").
const DefaultK = 10

// searchPage is Search with K defaulted, an offset and attributes: a layer
// over the plain search, which runs with K + Offset and is then cut.
func (c *Collection) searchPage(ctx context.Context, q wpcsim.Cloud, opts SearchOptions) (SearchResult, error) {
	k := opts.K
	if k == 0 {
		k = DefaultK
	}
	if opts.Offset < 0 {
		return SearchResult{}, fmt.Errorf("%w: offset: must not be negative, got %d", ErrInvalidArgument, opts.Offset)
	}
	inner := opts
	inner.K, inner.Offset, inner.WithAttrs = k, 0, false
	if k > 0 {
		if k > query.MaxK-opts.Offset {
			return SearchResult{}, fmt.Errorf("%w: offset + k: at most %d, got %d + %d", ErrInvalidArgument, query.MaxK, opts.Offset, k)
		}
		inner.K = k + opts.Offset
	}
	res, err := c.Search(ctx, q, inner)
	if err != nil {
		return SearchResult{}, err
	}
	res.Hits = res.Hits[min(opts.Offset, len(res.Hits)):]
	if opts.WithAttrs {
		if err := c.fillAttrs(res.Hits); err != nil {
			return SearchResult{}, err
		}
	}
	return res, nil
}

// fillAttrs reads each hit's attributes. A hit deleted since it was scored
// keeps nil attributes.
func (c *Collection) fillAttrs(hits []Hit) error {
	for i := range hits {
		attrs, err := c.coll.Attrs(hits[i].IID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		hits[i].Attrs = attrs
	}
	return nil
}

// RerankOptions change what RerankWith returns.
type RerankOptions struct {
	// WithAttrs fills each hit's Attrs.
	WithAttrs bool
}

// RerankWith is Rerank with options. At most query.MaxK IDs; unknown IDs
// (and IDs deleted while the call runs) are listed in Missing, in request
// order, each once.
func (c *Collection) RerankWith(ctx context.Context, q wpcsim.Cloud, ids []string, opts RerankOptions) (SearchResult, error) {
	if len(ids) > query.MaxK {
		return SearchResult{}, fmt.Errorf("%w: ids: at most %d, got %d", ErrInvalidArgument, query.MaxK, len(ids))
	}
	if err := c.checkQuerySize(q); err != nil {
		return SearchResult{}, err
	}
	res, err := c.engine.Rerank(ctx, q, ids)
	if lerr := c.coll.CheckLive(); lerr != nil {
		return SearchResult{}, lerr // dropped meanwhile
	}
	if err != nil {
		return SearchResult{}, err
	}
	out := SearchResult{Hits: res.Hits, Stats: res.Stats, Missing: res.Missing}
	if opts.WithAttrs {
		if err := c.fillAttrs(out.Hits); err != nil {
			return SearchResult{}, err
		}
	}
	return out, nil
}
