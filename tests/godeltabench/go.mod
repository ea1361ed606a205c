module github.com/pprofio/pprofio/tests/godeltabench

go 1.25.0

require (
	github.com/grafana/pyroscope-go/godeltaprof v0.1.12
	github.com/pprofio/pprofio v0.0.0
)

require (
	github.com/klauspost/compress v1.18.6 // indirect
	github.com/pprofio/pprofio/tests v0.0.0
)

replace github.com/pprofio/pprofio => ../..

replace github.com/pprofio/pprofio/tests => ..
