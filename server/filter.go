package server

import (
	"fmt"

	"github.com/wpcdb/wpcdb"
)

// setFilter puts a request's filter expression into the search options.
//
// The embedded API gains SearchOptions.Filter with the filter language (the
// query branch); until then a non-empty filter is refused with
// Unimplemented rather than ignored, which would return unfiltered hits.
// When SearchOptions has Filter, this becomes `opts.Filter = expr` and a
// malformed expression is the core's InvalidArgument.
func setFilter(opts *wpcdb.SearchOptions, expr string) error {
	if expr == "" {
		return nil
	}
	return fmt.Errorf("%w: filter %q: filters are not available in this build", errUnimplemented, expr)
}
