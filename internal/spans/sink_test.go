//go:build cgo

package spans

import (
	"strings"
	"testing"

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
