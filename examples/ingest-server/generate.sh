#!/usr/bin/env bash
# Regenerates ingestpb/ingest.pb.go from the project's copy of the ingest
# contract (csrc/proto/ingest.proto). Needs protoc (Debian: protobuf-compiler)
# and protoc-gen-go on PATH:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.7
# The Go package is chosen here with -M, so the .proto needs no go_package.
set -euo pipefail
cd "$(dirname "$0")"

mod=github.com/pprofio/pprofio/examples/ingest-server
PATH="$PATH:$(go env GOPATH)/bin"

protoc \
    --proto_path=../../csrc/proto \
    --go_out=. \
    --go_opt=module="$mod" \
    --go_opt=Mingest.proto="$mod/ingestpb;ingestpb" \
    ingest.proto
