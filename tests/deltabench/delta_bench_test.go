// Package deltabench compares the C delta engine (csrc/pprof.c, reached
// through internal/core.Delta) with the same delta computed in Go by
// github.com/google/pprof/profile, on real Go heap profiles of about 1 MB and
// 10 MB (raw, uncompressed pprof).
//
//	cd tests && go test -run '^$' -bench . -benchtime 20x ./deltabench/
//
// The profiles are made once, in this process, before any timing, by
// tests/internal/heapgen (which tests/fastdeltabench uses too): with
// runtime.MemProfileRate = 1, a recursion of two functions along many paths
// allocates from tens or hundreds of thousands of distinct stacks (20-odd
// frames each). The base snapshot is taken after one pass; the current one
// after half of those stacks allocated again and a tenth more new ones did,
// so a delta drops about half of the samples, as a real window does.
//
// Both sides do the same work per operation: decode the base and the
// current profile, subtract the base's cumulative values (alloc_objects,
// alloc_space) per stack and labels, keep inuse_* as they are, drop the zero
// samples and what only they referenced, and encode the result. MB/s counts
// the bytes of both inputs. The Go side is Parse, base.ScaleN({-1, -1, 0, 0}),
// profile.Merge([cur, base]) (which drops zero samples and compacts) and
// WriteUncompressed; Scale(-1) would subtract the inuse values as well.
// After the benchmarks, TestMain prints the C/Go ratios.
package deltabench

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/pprofio/pprofio/internal/core"
	"github.com/pprofio/pprofio/tests/internal/heapgen"
)

type pair struct {
	name      string
	base, cur []byte
}

var (
	pairsOnce sync.Once
	pairs     []pair
	pairsErr  error
)

// makePair makes a pair with heapgen.Pair.
func makePair(name string, root func(uint32), n uint32) (pair, error) {
	base, cur, err := heapgen.Pair(root, n)
	return pair{name, base, cur}, err
}

func loadPairs(tb testing.TB) []pair {
	pairsOnce.Do(func() {
		start := time.Now()
		small, err := makePair("heap_1MB", heapgen.Small, heapgen.SmallPaths)
		if err != nil {
			pairsErr = err
			return
		}
		large, err := makePair("heap_10MB", heapgen.Large, heapgen.LargePaths)
		if err != nil {
			pairsErr = err
			return
		}
		pairs = []pair{small, large}
		for _, p := range pairs {
			fmt.Fprintf(os.Stderr, "deltabench: %s: base %.2f MB, current %.2f MB (made in %v)\n", p.name,
				float64(len(p.base))/1e6, float64(len(p.cur))/1e6, time.Since(start).Round(time.Millisecond))
		}
	})
	if pairsErr != nil {
		tb.Fatal(pairsErr)
	}
	return pairs
}

// goDelta is the delta with github.com/google/pprof/profile.
func goDelta(baseRaw, curRaw []byte) ([]byte, error) {
	base, err := profile.ParseData(baseRaw)
	if err != nil {
		return nil, err
	}
	cur, err := profile.ParseData(curRaw)
	if err != nil {
		return nil, err
	}
	ratios := make([]float64, len(base.SampleType))
	for i, st := range base.SampleType {
		switch st.Type {
		case "alloc_objects", "alloc_space", "contentions", "delay":
			ratios[i] = -1
		}
	}
	if err := base.ScaleN(ratios); err != nil {
		return nil, err
	}
	delta, err := profile.Merge([]*profile.Profile{cur, base})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := delta.WriteUncompressed(&out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func cDelta(base, cur []byte) ([]byte, error) {
	out, isDelta, err := core.Delta(base, cur)
	if err == nil && !isDelta {
		err = fmt.Errorf("no delta")
	}
	return out, err
}

// results keeps each benchmark's time per operation for the closing table.
var (
	resultsMu sync.Mutex
	results   = map[string]time.Duration{}
)

func BenchmarkDelta(b *testing.B) {
	for _, p := range loadPairs(b) {
		p := p
		for _, impl := range []struct {
			name string
			fn   func(base, cur []byte) ([]byte, error)
		}{{"C", cDelta}, {"Go", goDelta}} {
			impl := impl
			b.Run(p.name+"/"+impl.name, func(b *testing.B) {
				out, err := impl.fn(p.base, p.cur)
				if err != nil {
					b.Fatal(err)
				}
				var cAllocs, cBaseline int64
				if impl.name == "C" {
					if cAllocs, cBaseline, err = core.DeltaCost(p.base, p.cur); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(len(p.base) + len(p.cur)))
				b.ReportAllocs()
				runtime.GC()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := impl.fn(p.base, p.cur); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				// Reported after the loop: ResetTimer drops metrics reported before it.
				b.ReportMetric(float64(len(out)), "out-B")
				if impl.name == "C" {
					b.ReportMetric(float64(cAllocs), "C-allocs/op") // calls to the core's malloc
					b.ReportMetric(float64(cBaseline), "C-baseline-B")
				}
				resultsMu.Lock()
				results[b.Name()] = b.Elapsed() / time.Duration(b.N)
				resultsMu.Unlock()
			})
		}
	}
}

// TestCAndGoDeltasAgree checks that both sides compute the same delta, stack
// by stack (the C output read back by the Go profile package), on the 1 MB
// pair and on a pair with inlined frames and truncated stacks.
func TestCAndGoDeltasAgree(t *testing.T) {
	edge, err := makePair("inlined_and_truncated", heapgen.Edge, 400)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []pair{loadPairs(t)[0], edge} {
		t.Run(p.name, func(t *testing.T) { deltasAgree(t, p) })
	}
	inl, trunc := edgeCounts(profileMust(t, edge.cur))
	if inl == 0 || trunc == 0 {
		t.Fatalf("the edge pair has %d samples with inlined frames and %d truncated stacks: it tests nothing", inl, trunc)
	}
}

func deltasAgree(t *testing.T, p pair) {
	cOut, err := cDelta(p.base, p.cur)
	if err != nil {
		t.Fatal(err)
	}
	goOut, err := goDelta(p.base, p.cur)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := profile.ParseData(cOut)
	if err != nil {
		t.Fatalf("the C delta does not parse: %v", err)
	}
	gp, err := profile.ParseData(goOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.CheckValid(); err != nil {
		t.Fatalf("the C delta is not valid: %v", err)
	}
	cs, gs := byStack(cp), byStack(gp)
	if len(cs) != len(gs) {
		t.Errorf("C delta has %d stacks, Go delta %d", len(cs), len(gs))
	}
	for k, gv := range gs {
		if cv, ok := cs[k]; !ok || cv != gv {
			t.Errorf("stack %.80s...: C %v, Go %v", k, cv, gv)
		}
	}
	t.Logf("%d stacks in the delta of %d samples", len(cs), len(profileMust(t, p.cur).Sample))
}

func profileMust(t *testing.T, raw []byte) *profile.Profile {
	p, err := profile.ParseData(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// byStack sums a profile's values per stack (addresses) and labels.
func byStack(p *profile.Profile) map[string][4]int64 {
	m := map[string][4]int64{}
	for _, s := range p.Sample {
		var k strings.Builder
		for _, l := range s.Location {
			fmt.Fprintf(&k, "%x;", l.Address)
		}
		keys := make([]string, 0, len(s.NumLabel))
		for key, v := range s.NumLabel {
			keys = append(keys, fmt.Sprint(key, v))
		}
		for key, v := range s.Label {
			keys = append(keys, fmt.Sprint(key, v))
		}
		sort.Strings(keys)
		k.WriteString(strings.Join(keys, ","))
		v := m[k.String()]
		for i := range s.Value {
			if i < 4 {
				v[i] += s.Value[i]
			}
		}
		m[k.String()] = v
	}
	return m
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(results) > 0 {
		fmt.Println("\ndeltabench: time per delta (C/Go: the C path's share of the Go path's time)")
		for _, p := range pairs {
			c, g := results["BenchmarkDelta/"+p.name+"/C"], results["BenchmarkDelta/"+p.name+"/Go"]
			if c == 0 || g == 0 {
				continue
			}
			mb := float64(len(p.base)+len(p.cur)) / 1e6
			fmt.Printf("  %-10s C %10v (%7.1f MB/s)   Go %10v (%7.1f MB/s)   C/Go %.3f   Go/C %.1fx\n", p.name,
				c.Round(time.Microsecond), mb/c.Seconds(), g.Round(time.Microsecond), mb/g.Seconds(),
				c.Seconds()/g.Seconds(), g.Seconds()/c.Seconds())
		}
	}
	os.Exit(code)
}
