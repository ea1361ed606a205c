module github.com/pprofio/pprofio/tests

go 1.22

require (
	github.com/google/pprof v0.0.0-20241029153458-d1b30febd7db
	github.com/pprofio/pprofio v0.0.0
	github.com/pprofio/pprofio/examples/ingest-server v0.0.0
	google.golang.org/protobuf v1.36.7
)

replace github.com/pprofio/pprofio => ../

replace github.com/pprofio/pprofio/examples/ingest-server => ../examples/ingest-server
