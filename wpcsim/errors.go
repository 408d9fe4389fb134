package wpcsim

import (
	"fmt"

	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// The package's errors, all of kind invalid argument (see internal/wpcerr).
var (
	// ErrInvalidCloud is wrapped by every error about a malformed cloud;
	// the concrete error is a *FieldError naming the field and index.
	ErrInvalidCloud = wpcerr.New(wpcerr.InvalidArgument, "wpcsim: invalid cloud")
	// ErrInvalidKernel is wrapped by every error about a kernel spec.
	ErrInvalidKernel = wpcerr.New(wpcerr.InvalidArgument, "wpcsim: invalid kernel")
	// ErrInvalidConfig is wrapped by errors about a Config (norm, score
	// mode, or a combination the kernel does not allow).
	ErrInvalidConfig = wpcerr.New(wpcerr.InvalidArgument, "wpcsim: invalid config")
)

// FieldError is a bad value in a named field. A cloud that fails
// validation is one whose Field names the offending part with its indices,
// such as "weights[3]", "points[2][17]" or "points", and whose Sentinel is
// ErrInvalidCloud. Callers that know the item (an ID, a position in a
// batch) wrap it with that context; the field and reason stay in the
// message.
type FieldError = wpcerr.FieldError

// CloudError returns a *FieldError of a cloud: field, the formatted
// reason, and ErrInvalidCloud.
func CloudError(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Sentinel: ErrInvalidCloud}
}
