// gen.go: the pprofio heap profile pairs (about 1 MB and 10 MB, raw pprof),
// made the way tests/deltabench makes them: with runtime.MemProfileRate = 1,
// a recursion of two functions along many paths allocates from tens or
// hundreds of thousands of distinct stacks; the current snapshot follows
// half of the base's stacks allocating again and a tenth more new ones.
package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"runtime/pprof"
)

var sink []byte

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

//go:noinline
func smallRoot(path uint32) { walkA(path, 18) }

//go:noinline
func largeRoot(path uint32) { walkB(path, 20) }

func heapProfile() ([]byte, error) {
	runtime.GC()
	runtime.GC()
	var gz bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&gz, 0); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(&gz)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// makePair allocates along paths [0, n) for the base, then along every
// other one of them and along [n, n+n/10) for the current profile.
func makePair(root func(uint32), n uint32) (base, cur []byte, err error) {
	for p := uint32(0); p < n; p++ {
		root(p)
	}
	if base, err = heapProfile(); err != nil {
		return nil, nil, err
	}
	for p := uint32(0); p < n; p += 2 {
		root(p)
	}
	for p := n; p < n+n/10; p++ {
		root(p)
	}
	cur, err = heapProfile()
	return base, cur, err
}

// makePairs returns the 1 MB and the 10 MB pair, recording every
// allocation while they are made.
func makePairs() (small, large [2][]byte, err error) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	if small[0], small[1], err = makePair(smallRoot, 14000); err != nil {
		return
	}
	large[0], large[1], err = makePair(largeRoot, 126000)
	return
}
