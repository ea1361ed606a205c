package viewer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A tag filter over whole hours is answered by the hourly rollups, which
// keep their cycles' tags (and instance): beside the rollup when the hour's
// cycles share them (13:00 here), on each sample when they differ (12:00:
// every third cycle from instance b, tagged env=b). The filtered flame
// graph has the totals of that tag's files only, without reading them
// again (a file removed after its hour was rolled up still counts).
func TestTagFilterIsAnsweredByTheRollups(t *testing.T) {
	in := newIngest(t)
	b := strings.Repeat("b", 32)
	for i := 0; i < 130; i++ { // 12:00 to 14:10
		req := testBatch(t, "shop", i, nil, false)
		if i < 60 && i%3 == 0 {
			req.Source.InstanceId, req.Source.Tags = b, map[string]string{"env": "b", "tier": "x"}
		}
		in.send(t, req)
	}
	v := newTestViewer(t, in.dir, t.TempDir())
	if n, err := v.BuildRollups(); err != nil || n != 10 {
		t.Fatalf("BuildRollups: %d rollups, %v; want 10 (12:00 and 13:00 of five types)", n, err)
	}
	var shared12, shared13 string
	v.ix.db.QueryRow(`SELECT tags FROM rollups WHERE type = 'cpu' AND hour_ns = ?`, t0.UnixNano()).Scan(&shared12)
	v.ix.db.QueryRow(`SELECT tags FROM rollups WHERE type = 'cpu' AND hour_ns = ?`, t0.Add(time.Hour).UnixNano()).Scan(&shared13)
	if shared12 != "" || !strings.Contains(shared13, `"env":"test"`) {
		t.Fatalf("rollup tags: 12:00 %q (want none: its cycles differ), 13:00 %q (want env=test)", shared12, shared13)
	}
	for _, q := range []string{`SELECT file FROM profiles WHERE type = 'cpu' AND instance = ? ORDER BY start_ns LIMIT 1`,
		`SELECT file FROM profiles WHERE type = 'cpu' AND instance != ? ORDER BY start_ns DESC LIMIT 1 OFFSET 20`} {
		var removable string
		v.ix.db.QueryRow(q, b).Scan(&removable)
		if err := os.Remove(filepath.Join(in.dir, removable)); err != nil {
			t.Fatal(err)
		}
	}
	all := &selection{Source: "received", Service: "shop", From: t0.UnixNano(), To: t0.Add(3 * time.Hour).UnixNano()}
	for _, c := range []struct {
		tag  [2]string
		flat string
	}{
		{[2]string{"env", "b"}, "18000000000"},    // 20 cycles × 900 ms
		{[2]string{"env", "test"}, "99000000000"}, // 110 cycles
		{[2]string{"instance", b}, "18000000000"},
		{[2]string{"host", "host1"}, "117000000000"}, // all 130
		{[2]string{}, "117000000000"},
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
