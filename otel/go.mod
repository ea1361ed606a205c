module github.com/pprofio/pprofio/otel

go 1.22.12

require (
	github.com/google/pprof v0.0.0-20241029153458-d1b30febd7db
	github.com/pprofio/pprofio v0.0.0
	go.opentelemetry.io/otel v1.34.0
	go.opentelemetry.io/otel/sdk v1.34.0
	go.opentelemetry.io/otel/trace v1.34.0
)

require (
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	go.opentelemetry.io/auto/sdk v1.1.0 // indirect
	go.opentelemetry.io/otel/metric v1.34.0 // indirect
	golang.org/x/sys v0.29.0 // indirect
)

replace github.com/pprofio/pprofio => ../
