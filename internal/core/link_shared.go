//go:build cgo && pprofio_shared

package core

// With -tags pprofio_shared, zlib and protobuf-c are linked as shared
// libraries, for distributions that ship no static archives of them; the
// runtime image then needs them too (Debian: zlib1g, libprotobuf-c1).

/*
#cgo pkg-config: zlib libprotobuf-c
*/
import "C"
