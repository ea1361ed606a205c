// Package heapgen makes real Go heap profiles with many distinct stacks,
// for the delta benchmarks (tests/deltabench, and tests/fastdeltabench,
// its own module, through a replace of this one) so that both measure the
// same inputs.
//
// With runtime.MemProfileRate = 1, a recursion of two functions along many
// paths allocates from tens or hundreds of thousands of distinct stacks
// (20-odd frames each). A pair's base snapshot is taken after one pass; the
// current one after half of those stacks allocated again and a tenth more
// new ones did, so a delta drops about half of the samples, as a real
// window does.
package heapgen

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"runtime/pprof"
)

// The paths of the two pairs: about 1 MB and about 10 MB of raw pprof.
const (
	SmallPaths = 14000
	LargePaths = 126000
)

var sink []byte

// walkA and walkB recurse depth levels, choosing the next function by one
// bit of path: each path is a distinct stack.
//
//go:noinline
func walkA(path uint32, depth int) {
	if depth == 0 {
		sink = make([]byte, 64)
		return
	}
	if path&1 == 0 {
		walkA(path>>1, depth-1)
	} else {
		walkB(path>>1, depth-1)
	}
}

//go:noinline
func walkB(path uint32, depth int) {
	if depth == 0 {
		sink = make([]byte, 64)
		return
	}
	if path&1 == 0 {
		walkA(path>>1, depth-1)
	} else {
		walkB(path>>1, depth-1)
	}
}

// Small and Large are the roots of the two pairs' stacks: two entry points,
// so that the two sizes' stacks differ from the first frame.
//
//go:noinline
func Small(path uint32) { walkA(path, 18) }

//go:noinline
func Large(path uint32) { walkB(path, 20) }

// inlined allocates through a chain the compiler inlines, so that each
// location of its stacks holds several lines (functions).
func inlined(path uint32) { inlinedA(path) }

func inlinedA(path uint32) {
	if path&1 == 0 {
		inlinedB(path)
	} else {
		sink = make([]byte, 48)
	}
}

func inlinedB(path uint32) { sink = make([]byte, 80) }

// deep recurses past the depth the runtime records (it keeps the frames
// nearest the allocation: the stack is truncated), along path's bits.
//
//go:noinline
func deep(path uint32, depth int) {
	if depth == 0 {
		sink = make([]byte, 96)
		return
	}
	if depth < 8 && path&(1<<depth) != 0 {
		deepOther(path, depth-1)
		return
	}
	deep(path, depth-1)
}

//go:noinline
func deepOther(path uint32, depth int) { deep(path, depth) }

// Edge allocates along inlined frames and along stacks deeper than the
// runtime keeps, by path.
//
//go:noinline
func Edge(path uint32) {
	inlined(path)
	deep(path, 300)
}

// Profile writes the heap profile as raw (uncompressed) pprof, after two
// collections so that it is up to date.
func Profile() ([]byte, error) {
	runtime.GC()
	runtime.GC()
	return Raw("heap")
}

// Raw writes the named runtime/pprof profile as raw (uncompressed) pprof,
// as it is now: no collection first.
func Raw(name string) ([]byte, error) {
	var gz bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&gz, 0); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(&gz)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// Pair allocates along paths [0, n) of root for the base, then along every
// other one of them and along [n, n+n/10) for the current profile. Every
// allocation is recorded (runtime.MemProfileRate = 1) meanwhile.
func Pair(root func(uint32), n uint32) (base, cur []byte, err error) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	for p := uint32(0); p < n; p++ {
		root(p)
	}
	if base, err = Profile(); err != nil {
		return nil, nil, err
	}
	for p := uint32(0); p < n; p += 2 {
		root(p)
	}
	for p := n; p < n+n/10; p++ {
		root(p)
	}
	cur, err = Profile()
	return base, cur, err
}
