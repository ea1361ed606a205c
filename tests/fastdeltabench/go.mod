module github.com/pprofio/pprofio/tests/fastdeltabench

go 1.22

require github.com/pprofio/pprofio v0.0.0

replace github.com/pprofio/pprofio => ../..
