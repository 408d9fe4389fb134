package wpcdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/query"
	"github.com/wpcdb/wpcdb/storage"
)

// Limits of the read calls below (see README "Limits").
const (
	// MaxGetMany is the largest number of IDs one GetMany takes.
	MaxGetMany = 10_000
	// MaxScrollLimit is the largest page a Scroll returns.
	MaxScrollLimit = 10_000
	// DefaultScrollLimit is the page size of a Scroll that gives none.
	DefaultScrollLimit = 256
)

// GetMany returns the stored items with these IDs, in request order (a
// repeated ID once), and the IDs that do not exist, in request order. At
// most MaxGetMany IDs.
func (c *Collection) GetMany(ctx context.Context, ids []string) (items []Item, missing []string, err error) {
	if len(ids) > MaxGetMany {
		return nil, nil, fmt.Errorf("%w: ids: at most %d, got %d", ErrInvalidArgument, MaxGetMany, len(ids))
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		it, err := c.coll.Get(id)
		if errors.Is(err, ErrNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		items = append(items, Item{ID: it.ID, Cloud: it.Cloud, Attrs: it.Attrs})
	}
	return items, missing, nil
}

// ScrollOptions choose a Scroll page.
type ScrollOptions struct {
	// Filter restricts the items to those matching a filter expression
	// (empty: every item).
	Filter string
	// Cursor is the previous page's NextCursor ("": from the first item).
	Cursor string
	// Limit is the page size, 1 to MaxScrollLimit (0: DefaultScrollLimit).
	Limit int
	// WithClouds returns each item's cloud; otherwise items carry their ID
	// and attributes only.
	WithClouds bool
}

// ScrollPage is one page of a Scroll.
type ScrollPage struct {
	// Items are in ID order (byte-wise).
	Items []Item
	// NextCursor is the last item's ID when more items follow, "" when the
	// scroll is done.
	NextCursor string
}

// Scroll returns the items passing opts.Filter whose ID sorts after
// opts.Cursor, in ID order, a page at a time. Pages chained by their
// cursors return every item that exists throughout the scroll exactly
// once, whatever is written or deleted meanwhile; an item written during
// the scroll is returned when its ID sorts after the cursor.
func (c *Collection) Scroll(ctx context.Context, opts ScrollOptions) (ScrollPage, error) {
	limit := opts.Limit
	if limit == 0 {
		limit = DefaultScrollLimit
	}
	if limit < 0 || limit > MaxScrollLimit {
		return ScrollPage{}, fmt.Errorf("%w: limit: must be 1 to %d, got %d", ErrInvalidArgument, MaxScrollLimit, limit)
	}
	allowed, err := c.filterBitmap(opts.Filter)
	if err != nil {
		return ScrollPage{}, err
	}
	var page ScrollPage
	err = c.coll.ScanIDs(opts.Cursor, func(id string, iid uint32) (bool, error) {
		if !allowed.Contains(iid) {
			return true, nil
		}
		if len(page.Items) == limit {
			// One more matches: the scroll goes on after this page.
			page.NextCursor = page.Items[limit-1].ID
			return false, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var it Item
		if opts.WithClouds {
			s, err := c.coll.GetByIID(iid)
			if errors.Is(err, ErrNotFound) {
				return true, nil // deleted meanwhile: left out
			}
			if err != nil {
				return false, err
			}
			it = Item{ID: s.ID, Cloud: s.Cloud, Attrs: s.Attrs}
		} else {
			attrs, err := c.coll.Attrs(iid)
			if errors.Is(err, ErrNotFound) {
				return true, nil // deleted meanwhile: left out
			}
			if err != nil {
				return false, err
			}
			it = Item{ID: id, Attrs: attrs}
		}
		page.Items = append(page.Items, it)
		return true, nil
	})
	if err != nil {
		return ScrollPage{}, err
	}
	return page, nil
}

// CountFilter returns the number of live items passing a filter expression
// ("": every item, as Count).
func (c *Collection) CountFilter(ctx context.Context, filter string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if filter == "" {
		return c.Count(), nil
	}
	bm, err := c.filterBitmap(filter)
	if err != nil {
		return 0, err
	}
	return int(bm.GetCardinality()), nil
}

// filterBitmap returns the live items passing a filter ("": all of them).
func (c *Collection) filterBitmap(filter string) (*roaring.Bitmap, error) {
	live := c.coll.Live()
	if filter == "" {
		return live, nil
	}
	expr, err := query.Parse(filter)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	live.And(query.Compile(expr, c.coll))
	return live, nil
}

// UpdateAttrs sets and removes attributes of the item with this ID in one
// durable write, without rewriting its cloud; filters see the change as
// soon as it returns. A name in unset that the item lacks is ignored; a
// name both in set and unset is ErrInvalidArgument; an unknown ID is
// ErrNotFound. It returns the attributes after the update.
func (c *Collection) UpdateAttrs(ctx context.Context, id string, set map[string]any, unset []string) (map[string]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.CheckID(id); err != nil {
		return nil, err
	}
	if err := storage.CheckAttrs(set); err != nil {
		return nil, fmt.Errorf("item %s: %w", storage.QuoteID(id), err)
	}
	attrs, err := c.coll.UpdateAttrs(id, set, unset)
	if errors.Is(err, storage.ErrInvalidItem) {
		return nil, fmt.Errorf("item %s: %w", storage.QuoteID(id), err)
	}
	return attrs, err
}
