//go:build cgo

package spans

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

func newSink(t *testing.T, direct bool) *Sink {
	t.Helper()
	s, err := New(core.SpanConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s.SetDirect(direct)
	t.Cleanup(s.Free)
	return s
}

// Both hand-offs, the block and the one call per span, must record the
// same thing, whether the name and tags come as strings or laid out once
// (EncodeText, as a cached span's do): names and tags cut at the core's
// limits, NUL bytes left out.
func TestBlocksAndSingleCallsRecordTheSameSpans(t *testing.T) {
	long := strings.Repeat("n", MaxName+40)
	var manyTags []string
	for i := 0; i < 200; i++ {
		manyTags = append(manyTags, "key", strings.Repeat("v", 20))
	}
	for _, mode := range []int{0, 1, 2, 3} {
		direct := mode&1 != 0
		s := newSink(t, direct)
		record := s.Record
		if mode&2 != 0 {
			record = func(name string, tags []string, start, dur int64, id, parent uint64, pcs []uintptr) {
				text := EncodeText(name, tags)
				s.RecordText(&text, start, dur, id, parent, pcs)
			}
		}
		record("a\x00b", []string{"k\x00", "v\x00x"}, 1, 10, 1, 0, nil)
		record(long, manyTags, 2, 20, 2, 1, nil)
		record("odd", []string{"k", "v", "dangling"}, 3, 30, 3, 0, nil)
		c, err := s.Take()
		if err != nil {
			t.Fatal(err)
		}
		if c.Recorded != 3 || c.Dropped != 0 || len(c.Series) != 3 {
			t.Fatalf("mode %d: recorded %d, dropped %d, %d series", mode, c.Recorded, c.Dropped, len(c.Series))
		}
		byName := map[string]core.SpanSeries{}
		for _, sr := range c.Series {
			byName[sr.Name] = sr
		}
		if sr, ok := byName["ab"]; !ok || strings.Join(sr.Tags, "|") != "k|vx" {
			t.Fatalf("mode %d: NULs not left out: %+v", mode, c.Series)
		}
		sr, ok := byName[long[:MaxName]]
		if !ok || len(sr.Tags) == 0 || len(sr.Tags)%2 != 0 || len(sr.Tags)/2*(4+21) > MaxTags {
			t.Fatalf("mode %d: long name or tags not cut at a pair within the limits: %d tags", mode, len(sr.Tags))
		}
		if sr := byName["odd"]; strings.Join(sr.Tags, "|") != "k|v" {
			t.Fatalf("mode %d: odd tags %q", mode, sr.Tags)
		}
	}
}

func TestAStartStackTravelsWithItsSpan(t *testing.T) {
	pcs := make([]uintptr, MaxPCs+10)
	for i := range pcs {
		pcs[i] = uintptr(0x400000 + i)
	}
	for _, laidOut := range []bool{false, true} {
		s := newSink(t, false)
		if laidOut {
			text := EncodeText("stacked", []string{"k", "v"})
			s.RecordText(&text, 1, 10, 1, 0, pcs)
		} else {
			s.Record("stacked", []string{"k", "v"}, 1, 10, 1, 0, pcs)
		}
		c, err := s.Take()
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Stacks) != 1 || len(c.Stacks[0].PCs) != MaxPCs || c.Stacks[0].PCs[MaxPCs-1] != pcs[MaxPCs-1] ||
			len(c.Series) != 1 || c.Series[0].Name != "stacked" || strings.Join(c.Series[0].Tags, "|") != "k|v" {
			t.Fatalf("laid out %v: stacks %+v, series %+v: want the first %d pcs", laidOut, c.Stacks, c.Series, MaxPCs)
		}
	}
}

func TestSpansAfterCloseAreCountedNotRecorded(t *testing.T) {
	s := newSink(t, false)
	s.Record("before", nil, 1, 10, 1, 0, nil)
	s.Close()
	s.Record("after", nil, 1, 10, 2, 0, nil)
	if st := s.Stats(); st.Recorded != 1 || s.Late() != 1 {
		t.Fatalf("recorded %d, late %d; want 1, 1", st.Recorded, s.Late())
	}
}

// The pool the shards are lent through lets go of them at garbage
// collections (and at random under the race detector). A span buffered in
// a shard whose holder went must still reach the core, and shards whose
// holders went are lent again, so their number stays bounded however
// often that happens.
func TestSpansInShardsThePoolLetGoOfAreKeptAndTheShardsReused(t *testing.T) {
	s := newSink(t, false)
	const rounds, goroutines, each = 60, 8, 25
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					s.Record("pooled", []string{"round", "r"}, 1, 10, uint64(i+1), 0, nil)
				}
			}()
		}
		wg.Wait()
		// Two collections drop what the pool held; finalizers (run
		// after a collection, on their own goroutine) give the shards
		// back: wait for some, a bounded number of times.
		runtime.GC()
		runtime.GC()
		for i := 0; i < 1000 && s.freeShards() == 0; i++ {
			runtime.Gosched()
			time.Sleep(time.Millisecond)
		}
	}
	s.regMu.Lock()
	made := len(s.all)
	s.regMu.Unlock()
	if made > maxShards {
		t.Fatalf("%d shards made, more than the bound %d", made, maxShards)
	}
	// Without the shards coming back, each round would make new ones
	// until the bound.
	if !raceEnabled && made > maxShards/2 {
		t.Fatalf("%d shards made for %d Ps: shards whose holder went are not lent again", made, runtime.GOMAXPROCS(0))
	}
	c, err := s.Take()
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(rounds * goroutines * each); c.Recorded != want || c.Dropped != 0 {
		t.Fatalf("recorded %d (dropped %d), want %d: spans in shards the pool let go of were lost", c.Recorded, c.Dropped, want)
	}
}

// A span handed over as a Finished record (what End does) is recorded as
// the same span handed over as a record: name, tags, timings, ids and
// start stack, whether it is still pending in its shard at Take or was
// laid out when the shard held PendMax.
func TestFinishedSpansAreRecordedAsTheirRecordsAre(t *testing.T) {
	text := EncodeText("finished", []string{"k", "v"})
	pcs := []uintptr{0x401000, 0x402000}
	const n = 2*PendMax + 3 // two lay-outs, three pending at Take
	run := func(add bool) *core.SpanCycle {
		s := newSink(t, false)
		for i := 0; i < n; i++ {
			f := &Finished{Start: int64(i) * 1000, Dur: int64(i+1) * 1e6, ID: uint64(i + 1), Parent: 7, Text: &text}
			if i%10 == 0 {
				f.Stack = &pcs
			}
			if add {
				s.Add(f)
				continue
			}
			var stack []uintptr
			if f.Stack != nil {
				stack = *f.Stack
			}
			s.RecordText(&text, f.Start, f.Dur, f.ID, f.Parent, stack)
		}
		c, err := s.Take()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	got, want := run(true), run(false)
	if got.Recorded != n || len(got.Series) != 1 || got.Series[0].Name != "finished" ||
		strings.Join(got.Series[0].Tags, "|") != "k|v" {
		t.Fatalf("recorded %d in %+v, want %d spans of finished k=v", got.Recorded, got.Series, n)
	}
	g, w := got.Series[0], want.Series[0]
	if g.Count != w.Count || g.Total != w.Total || g.Min != w.Min || g.Max != w.Max {
		t.Fatalf("timings %+v, want %+v", g, w)
	}
	if len(got.Stacks) != 1 || got.Stacks[0].Count != want.Stacks[0].Count || len(got.Stacks[0].PCs) != len(pcs) {
		t.Fatalf("stacks %+v, want %+v", got.Stacks, want.Stacks)
	}
	ids := map[uint64]bool{}
	for _, smp := range got.Samples {
		ids[smp.ID] = true
		if smp.ParentID != 7 {
			t.Fatalf("sample %+v: parent %d, want 7", smp, smp.ParentID)
		}
	}
	for _, smp := range want.Samples {
		if !ids[smp.ID] {
			t.Fatalf("the record path samples span %d, the Finished path does not (same seed, same spans)", smp.ID)
		}
	}
}

func (s *Sink) freeShards() int {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return len(s.free)
}
