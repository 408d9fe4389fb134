// Package recvhold carries a request's receive reservation (the server's
// receive gate, server/recvgate.go) in its context, so that code below or
// beside the server can give it back: the cluster's router does when it
// forwards the request, whose parts may need a place in the receive
// budget of this very node (waiting for one while holding one could
// deadlock).
package recvhold

import "context"

// Holder is a reservation that can be given back (more than once).
type Holder interface{ Release() }

type key struct{}

// With returns ctx carrying h.
func With(ctx context.Context, h Holder) context.Context {
	return context.WithValue(ctx, key{}, h)
}

// From returns the reservation ctx carries, or nil.
func From(ctx context.Context) Holder {
	h, _ := ctx.Value(key{}).(Holder)
	return h
}

// Release gives back the reservation ctx carries, if any.
func Release(ctx context.Context) {
	if h := From(ctx); h != nil {
		h.Release()
	}
}
