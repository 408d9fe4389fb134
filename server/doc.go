// Package server serves a wpcdb.DB over gRPC as the service wpcdb.v1.WPCDBService
// (proto/wpcdb/v1/wpcdb.proto; generated code in server/wpcdbv1), beside the
// standard health and reflection services.
//
// Handlers convert the request, call the embedded API and return its result;
// every error becomes a gRPC status in one place, internal/rpcerr (the map
// the cluster router uses too), applied by the status interceptor, so
// that bad input is InvalidArgument naming the item and the field, never
// Internal. Interceptors, outermost first: metrics (go-grpc-middleware's
// standard grpc_server_* names), the wpcdb-version response header and
// logging, status mapping, panic recovery, bearer-token auth.
//
// A Server is safe for concurrent use. It does not own the DB: close the DB
// after Stop returns.
package server
