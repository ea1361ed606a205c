//go:build cgo && !pprofio_shared

package core

// zlib and protobuf-c are linked from their static archives (Debian:
// zlib1g-dev, libprotobuf-c-dev), so a program that imports pprofio needs
// no shared library of theirs at run time. --push-state/--pop-state keep
// -Bstatic to these two. Build with -tags pprofio_shared where the
// archives are missing (link_shared.go).

/*
#cgo LDFLAGS: -Wl,--push-state -Wl,-Bstatic -lprotobuf-c -lz -Wl,--pop-state
*/
import "C"
