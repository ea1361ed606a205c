module github.com/pprofio/pprofio/examples/ingest-server

go 1.22

require google.golang.org/protobuf v1.36.7
