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
// same thing: names and tags cut at the core's limits, NUL bytes left out.
func TestBlocksAndSingleCallsRecordTheSameSpans(t *testing.T) {
	long := strings.Repeat("n", MaxName+40)
	var manyTags []string
	for i := 0; i < 200; i++ {
		manyTags = append(manyTags, "key", strings.Repeat("v", 20))
	}
	for _, direct := range []bool{false, true} {
		s := newSink(t, direct)
		s.Record("a\x00b", []string{"k\x00", "v\x00x"}, 1, 10, 1, 0, nil)
		s.Record(long, manyTags, 2, 20, 2, 1, nil)
		s.Record("odd", []string{"k", "v", "dangling"}, 3, 30, 3, 0, nil)
		c, err := s.Take()
		if err != nil {
			t.Fatal(err)
		}
		if c.Recorded != 3 || c.Dropped != 0 || len(c.Series) != 3 {
			t.Fatalf("direct=%v: recorded %d, dropped %d, %d series", direct, c.Recorded, c.Dropped, len(c.Series))
		}
		byName := map[string]core.SpanSeries{}
		for _, sr := range c.Series {
			byName[sr.Name] = sr
		}
		if sr, ok := byName["ab"]; !ok || strings.Join(sr.Tags, "|") != "k|vx" {
			t.Fatalf("direct=%v: NULs not left out: %+v", direct, c.Series)
		}
		sr, ok := byName[long[:MaxName]]
		if !ok || len(sr.Tags) == 0 || len(sr.Tags)%2 != 0 || len(sr.Tags)/2*(4+21) > MaxTags {
			t.Fatalf("direct=%v: long name or tags not cut at a pair within the limits: %d tags", direct, len(sr.Tags))
		}
		if sr := byName["odd"]; strings.Join(sr.Tags, "|") != "k|v" {
			t.Fatalf("direct=%v: odd tags %q", direct, sr.Tags)
		}
	}
}

func TestAStartStackTravelsWithItsSpan(t *testing.T) {
	s := newSink(t, false)
	pcs := make([]uintptr, MaxPCs+10)
	for i := range pcs {
		pcs[i] = uintptr(0x400000 + i)
	}
	s.Record("stacked", nil, 1, 10, 1, 0, pcs)
	c, err := s.Take()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Stacks) != 1 || len(c.Stacks[0].PCs) != MaxPCs || c.Stacks[0].PCs[MaxPCs-1] != pcs[MaxPCs-1] {
		t.Fatalf("stacks %+v: want the first %d pcs", c.Stacks, MaxPCs)
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
