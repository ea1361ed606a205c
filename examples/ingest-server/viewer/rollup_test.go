package viewer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A tag filter over whole hours is answered by the hourly rollups: each
// keeps its cycles' tags (and instance) on its samples, so the filtered
// flame graph has the totals of that tag's files only, without reading
// them again (a file removed after its hour was rolled up still counts).
func TestTagFilterIsAnsweredByTheRollups(t *testing.T) {
	in := newIngest(t)
	var removable string
	for i := 0; i < 130; i++ { // 12:00 to 14:10; every third cycle from instance b, tagged env=b
		req := testBatch(t, "shop", i, nil, false)
		if i%3 == 0 {
			req.Source.InstanceId, req.Source.Tags = strings.Repeat("b", 32), map[string]string{"env": "b", "tier": "x"}
		}
		in.send(t, req)
	}
	v := newTestViewer(t, in.dir, t.TempDir())
	if n, err := v.BuildRollups(); err != nil || n != 10 {
		t.Fatalf("BuildRollups: %d rollups, %v; want 10 (12:00 and 13:00 of five types)", n, err)
	}
	v.ix.db.QueryRow(`SELECT file FROM profiles WHERE type = 'cpu' AND instance = ? ORDER BY start_ns LIMIT 1`, strings.Repeat("b", 32)).Scan(&removable)
	if err := os.Remove(filepath.Join(in.dir, removable)); err != nil {
		t.Fatal(err)
	}
	all := &selection{Source: "received", Service: "shop", From: t0.UnixNano(), To: t0.Add(3 * time.Hour).UnixNano()}
	for _, c := range []struct {
		tag  [2]string
		flat string
	}{
		{[2]string{"env", "b"}, "39600000000"},    // 44 cycles × 900 ms
		{[2]string{"env", "test"}, "77400000000"}, // 86 cycles
		{[2]string{"instance", strings.Repeat("b", 32)}, "39600000000"},
		{[2]string{"host", "host1"}, "117000000000"}, // all 130
	} {
		s := *all
		s.Tag = c.tag
		body := mustGet(t, v, pprofLink(&s, "cpu", "top"), 200, `"Name":"main.hotFunc","InlineLabel":"","Flat":`+c.flat+`,`)
		if strings.Contains(body, tagLabel) {
			t.Errorf("tag %v: the rollups' tag labels show in pprof's view", c.tag)
		}
	}
	s := *all
	s.Tag = [2]string{"env", "nowhere"}
	mustGet(t, v, pprofLink(&s, "cpu", "flamegraph"), 200, "no cpu sample of a cycle tagged env=nowhere in this range")
}
