module github.com/pprofio/pprofio/tests/fastdeltabench

go 1.25.0

require (
	github.com/pprofio/pprofio v0.0.0
	github.com/pprofio/pprofio/tests v0.0.0
)

replace github.com/pprofio/pprofio => ../..

replace github.com/pprofio/pprofio/tests => ..
