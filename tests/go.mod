module github.com/pprofio/pprofio/tests

go 1.22

require (
	github.com/google/pprof v0.0.0-20241029153458-d1b30febd7db
	github.com/pprofio/pprofio v0.0.0
	github.com/pprofio/pprofio/examples/ingest-server v0.0.0
	google.golang.org/protobuf v1.36.7
)

require (
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/ianlancetaylor/demangle v0.0.0-20240312041847-bd984b5ce465 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/ncruces/go-strftime v0.1.9 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	golang.org/x/sys v0.22.0 // indirect
	modernc.org/libc v1.55.3 // indirect
	modernc.org/mathutil v1.6.0 // indirect
	modernc.org/memory v1.8.0 // indirect
	modernc.org/sqlite v1.34.5 // indirect
)

replace github.com/pprofio/pprofio => ../

replace github.com/pprofio/pprofio/examples/ingest-server => ../examples/ingest-server
