package deltabench

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/pprofio/pprofio/internal/records"
	"github.com/pprofio/pprofio/tests/internal/heapgen"
)

// defaultMemProfileRate is the runtime's, put back after each round.
const defaultMemProfileRate = 512 * 1024

// TestRecordsHeapDeltaEqualsRuntimePprof checks that the heap delta built
// from the runtime's records (internal/records, csrc/records.c) equals, stack
// by stack, runtime/pprof's heap profile minus the previous one (the C
// delta engine on what runtime/pprof wrote), on a program whose stacks have
// inlined frames and are truncated: the same samples and values, each
// location with the same address, functions, files and lines, in the same
// mapping; and the same sample types and period.
func TestRecordsHeapDeltaEqualsRuntimePprof(t *testing.T) {
	if !records.Supported {
		t.Skip("this build does not read the runtime's records")
	}
	h, err := records.NewHeap()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	old := runtime.MemProfileRate
	defer func() { runtime.MemProfileRate = old }()
	var base []byte
	for round := 0; round < 3; round++ {
		runtime.MemProfileRate = 1
		from := uint32(round * 150)
		for p := from; p < from+300; p++ { // half of the last round's stacks again, and new ones
			heapgen.Edge(p)
			heapgen.Small(p)
		}
		runtime.GC()
		runtime.GC()
		// Both read the same records: no garbage collection in between
		// (one would publish the allocations the first reader made).
		runtime.MemProfileRate = defaultMemProfileRate
		gc := debug.SetGCPercent(-1)
		cur, err := heapgen.Raw("heap")
		var isDelta bool
		if err == nil {
			_, isDelta, err = h.Snapshot(true)
		}
		debug.SetGCPercent(gc)
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if isDelta {
				t.Fatal("the first snapshot made a delta")
			}
			t.Run("totals", func(t *testing.T) { profilesEqual(t, cur, h.Out(), true) })
			base = cur
			continue
		}
		checkDeltaRound(t, round, &base, cur, isDelta, h.Out)
	}
}

// checkDeltaRound compares the delta the records made in a round after the
// first (out) with the C delta of runtime/pprof's profiles from *base to
// cur, and makes cur the next base.
func checkDeltaRound(t *testing.T, round int, base *[]byte, cur []byte, isDelta bool, out func() []byte) {
	t.Helper()
	if !isDelta {
		t.Fatalf("round %d: no delta", round)
	}
	want, err := cDelta(*base, cur)
	if err != nil {
		t.Fatal(err)
	}
	t.Run(fmt.Sprint("round", round), func(t *testing.T) { profilesEqual(t, want, out(), false) })
	*base = cur
}

// profilesEqual compares two delta profiles stack by stack and location by
// location. With newZeros, a stack may be in one only if all its values are
// zero: in a totals profile, the runtime lists buckets made since the last
// collection with zeros, and an allocation sampled between the two reads
// makes one.
func profilesEqual(t *testing.T, wantRaw, gotRaw []byte, newZeros bool) {
	t.Helper()
	want := profileMust(t, wantRaw)
	got, err := profile.ParseData(gotRaw)
	if err != nil {
		t.Fatalf("the records delta does not parse: %v", err)
	}
	if err := got.CheckValid(); err != nil {
		t.Fatalf("the records delta is not valid: %v", err)
	}
	if w, g := typesOf(want), typesOf(got); w != g {
		t.Errorf("types and period: want %s, got %s", w, g)
	}
	ws, gs := byStack(want), byStack(got)
	if len(ws) != len(gs) && !newZeros {
		t.Errorf("want %d stacks, got %d", len(ws), len(gs))
	}
	for k, wv := range ws {
		if gv, ok := gs[k]; (ok || !newZeros || wv != [4]int64{}) && gv != wv {
			t.Errorf("stack %.100s...: want %v, got %v (present %v)", k, wv, gv, ok)
		}
	}
	for k, gv := range gs {
		if _, ok := ws[k]; !ok && (!newZeros || gv != [4]int64{}) {
			t.Errorf("stack %.100s...: not in runtime/pprof's, got %v", k, gv)
		}
	}
	wl, gl := byAddress(want), byAddress(got)
	for a, w := range wl {
		if g, ok := gl[a]; !ok || g != w {
			t.Errorf("location %#x:\n want %s\n got  %s", a, w, g)
		}
	}
	inl, trunc := edgeCounts(got)
	if inl == 0 || trunc == 0 {
		t.Errorf("the delta has %d samples with inlined frames and %d truncated stacks: it tests too little", inl, trunc)
	}
	t.Logf("%d stacks, %d locations equal", len(gs), len(gl))
}

// byAddress describes each location: its lines and its mapping.
func byAddress(p *profile.Profile) map[uint64]string {
	m := map[uint64]string{}
	for _, l := range p.Location {
		var b strings.Builder
		for _, ln := range l.Line {
			f := ln.Function
			fmt.Fprintf(&b, "%s|%s|%s:%d(start %d); ", f.Name, f.SystemName, f.Filename, ln.Line, f.StartLine)
		}
		if mp := l.Mapping; mp != nil {
			fmt.Fprintf(&b, "in %s [%#x,%#x) off %#x build %s funcs %v", mp.File, mp.Start, mp.Limit, mp.Offset,
				mp.BuildID, mp.HasFunctions)
		}
		m[l.Address] = b.String()
	}
	return m
}

// edgeCounts counts samples with inlined frames and samples whose stack was cut.
func edgeCounts(p *profile.Profile) (inl, trunc int) {
	for _, s := range p.Sample {
		for _, l := range s.Location {
			if len(l.Line) > 1 {
				inl++
				break
			}
		}
		if n := len(s.Location); n > 0 && len(s.Location[n-1].Line) > 0 &&
			!strings.HasPrefix(s.Location[n-1].Line[len(s.Location[n-1].Line)-1].Function.Name, "runtime.") {
			trunc++
		}
	}
	return inl, trunc
}

// typesOf describes a profile's sample types and period.
func typesOf(p *profile.Profile) string {
	var b strings.Builder
	for _, st := range p.SampleType {
		fmt.Fprintf(&b, "%s/%s ", st.Type, st.Unit)
	}
	if p.PeriodType != nil {
		fmt.Fprintf(&b, "period %s/%s ", p.PeriodType.Type, p.PeriodType.Unit)
	}
	fmt.Fprintf(&b, "%d default %q", p.Period, p.DefaultSampleType)
	return b.String()
}
