module github.com/pprofio/pprofio/tests/overhead

go 1.25.0

require (
	github.com/grafana/pyroscope-go v1.5.0
	github.com/pprofio/pprofio v0.0.0
	github.com/pprofio/pprofio/examples/ingest-server v0.0.0
)

require (
	github.com/grafana/pyroscope-go/godeltaprof v0.1.12 // indirect
	github.com/klauspost/compress v1.20.2 // indirect
	google.golang.org/protobuf v1.36.7 // indirect
)

replace github.com/pprofio/pprofio => ../..

replace github.com/pprofio/pprofio/examples/ingest-server => ../../examples/ingest-server
