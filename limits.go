package wpcdb

import (
	"fmt"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// checkQuerySize refuses, before any work, a query with more points than
// the collection's items may have (CollectionConfig.MaxPoints): scoring
// costs query points × item points, and an unbounded query was a way to
// exhaust a server's memory and time.
func (c *Collection) checkQuerySize(q wpcsim.Cloud) error {
	maxPts := c.coll.Config().MaxPoints
	n := len(q.Weights)
	if q.Dim > 0 {
		n = max(n, len(q.Points)/q.Dim)
	}
	if maxPts > 0 && n > maxPts {
		return fmt.Errorf("%w: query: %d points exceeds the collection's maximum of %d (max points)", ErrInvalidArgument, n, maxPts)
	}
	return nil
}
