package wpcsim

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidCloud is wrapped by every error about a malformed cloud;
	// the concrete error is a *CloudError naming the field and index.
	ErrInvalidCloud = errors.New("wpcsim: invalid cloud")
	// ErrInvalidKernel is wrapped by every error about a kernel spec.
	ErrInvalidKernel = errors.New("wpcsim: invalid kernel")
	// ErrInvalidConfig is wrapped by errors about a Config (norm, score
	// mode, or a combination the kernel does not allow).
	ErrInvalidConfig = errors.New("wpcsim: invalid config")
)

// CloudError is a cloud that fails validation. Field names the offending
// part with its indices, such as "weights[3]", "points[2][17]" or "points".
// Callers that know the item (an ID, a position in a batch) wrap it with
// that context; the field and reason stay in the message.
type CloudError struct {
	Field  string
	Reason string
}

func (e *CloudError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidCloud) true.
func (e *CloudError) Unwrap() error { return ErrInvalidCloud }

func cloudErr(field, format string, args ...any) error {
	return &CloudError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
