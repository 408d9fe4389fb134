#!/usr/bin/env bash
# Regenerates server/wpcdbv1 (Go) from proto/wpcdb/v1/wpcdb.proto and
# cluster.proto (the nodes' internal service), and clients/python/wpcdb/v1
# (Python, wpcdb.proto only) with pinned generators, so that the checked-in
# code is reproducible. .ci/run runs it and fails when the result differs
# from what is committed.
#
# Needs protoc from Debian's protobuf-compiler and grpc_python_plugin from
# Debian's protobuf-compiler-grpc (installed here when missing and apt-get
# is available); installs the Go plugins at the pinned versions into a
# private GOBIN so a different version on PATH is never used.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12      # google.golang.org/protobuf/cmd/protoc-gen-go
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2   # google.golang.org/grpc/cmd/protoc-gen-go-grpc
PROTOC_VERSION="libprotoc 3.21.12"  # Debian bookworm's protobuf-compiler
GRPC_PYTHON_PLUGIN_DEB="1.51.1"     # Debian bookworm's protobuf-compiler-grpc

if ! command -v protoc >/dev/null || ! command -v grpc_python_plugin >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq protobuf-compiler protobuf-compiler-grpc >/dev/null
  else
    echo "genproto: protoc or grpc_python_plugin not found; install Debian's protobuf-compiler and protobuf-compiler-grpc" >&2; exit 1
  fi
fi
if command -v dpkg-query >/dev/null; then
  v="$(dpkg-query -W -f '${Version}' protobuf-compiler-grpc 2>/dev/null || true)"
  case "$v" in
    "$GRPC_PYTHON_PLUGIN_DEB"*) ;;
    *) echo "genproto: warning: protobuf-compiler-grpc $v, the checked-in Python stubs were made with $GRPC_PYTHON_PLUGIN_DEB" >&2 ;;
  esac
fi
if [ "$(protoc --version)" != "$PROTOC_VERSION" ]; then
  # The version is written into the generated files' headers.
  echo "genproto: warning: $(protoc --version), the checked-in code was made with $PROTOC_VERSION" >&2
fi

gobin="$(pwd)/.cache/genproto-bin"
mkdir -p "$gobin"
GOBIN="$gobin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$gobin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"

rm -f server/wpcdbv1/*.pb.go
protoc -I proto \
  --plugin=protoc-gen-go="$gobin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$gobin/protoc-gen-go-grpc" \
  --go_out=. --go_opt=module=github.com/wpcdb/wpcdb \
  --go-grpc_out=. --go-grpc_opt=module=github.com/wpcdb/wpcdb \
  proto/wpcdb/v1/wpcdb.proto proto/wpcdb/v1/cluster.proto
gofmt -l server/wpcdbv1 | (! grep .) || { echo "genproto: generated code is not gofmt-clean" >&2; exit 1; }

# The Python client's stubs: module wpcdb.v1.wpcdb_pb2 (and _grpc) inside
# the client package clients/python/wpcdb.
rm -f clients/python/wpcdb/v1/wpcdb_pb2.py clients/python/wpcdb/v1/wpcdb_pb2_grpc.py
protoc -I proto \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  --python_out=clients/python --grpc_python_out=clients/python \
  proto/wpcdb/v1/wpcdb.proto
