module github.com/pprofio/pprofio

go 1.22
