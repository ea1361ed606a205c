package viewer

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// sixCycles sends six cycles of "shop" with spans and a leak alert in the
// fifth through the receiver, and writes six cycles of "basic" locally.
func sixCycles(t *testing.T) (*ingest, string) {
	t.Helper()
	in := newIngest(t)
	for i := 0; i < 6; i++ {
		var evs []*ingestpb.Event
		if i == 4 {
			evs = append(evs, leakEvent(i))
		}
		if i == 2 {
			evs = append(evs, &ingestpb.Event{Kind: "profile_skipped", TimeUnixNano: t0.Add(2 * cycle).UnixNano(),
				Message: "the program holds the CPU profiler", Attributes: map[string]string{"type": "cpu", "reason": "busy"}})
		}
		in.send(t, testBatch(t, "shop", i, evs, true))
	}
	local := filepath.Join(t.TempDir(), "out")
	for i := 0; i < 6; i++ {
		writeLocal(t, local, "basic", i)
	}
	return in, local
}

// Every page of both sources renders its chart from the stored data.
func TestEveryPageShowsItsOutput(t *testing.T) {
	in, local := sixCycles(t)
	v := newTestViewer(t, in.dir, local)

	body := mustGet(t, v, "/", 200, `href="/s/received/shop/"`, `href="/s/local/basic/"`)
	if !regexp.MustCompile(`shop</a></td>\s*<td>[^<]+</td><td>[^<]+<small>[^<]+</small></td>\s*<td>6</td>`).MatchString(body) {
		t.Fatalf("services page: shop should show its range and 6 cycles:\n%s", body)
	}
	if !strings.Contains(body, `<td class="alert">1</td>`) {
		t.Fatalf("services page: shop should have 1 open alert:\n%s", body)
	}
	for _, src := range []string{"received/shop", "local/basic"} {
		base := "/s/" + src + "/"
		mustGet(t, v, base, 200, `id="axis"`, "6 cycles")
		cpu := mustGet(t, v, base+"cpu", 200, `id="cpu-chart"`, "merge of 6 windows", "span=checkout")
		if n := strings.Count(cpu, `class="pt"`); n != 6 {
			t.Errorf("%s cpu: %d points, want one per window (6)", src, n)
		}
		mustGet(t, v, base+"memory", 200, `id="alloc-bytes-chart"`, `id="inuse-chart"`, "main.allocFunc", "6 MiB")
		g := mustGet(t, v, base+"goroutines", 200, `id="goroutine-chart"`, "main.leakFunc", "main.worker")
		if n := strings.Count(g, `class="pt"`); n != 6 {
			t.Errorf("%s goroutines: %d points, want one per cycle (6)", src, n)
		}
		if !strings.Contains(g, `data-v="64"`) {
			t.Errorf("%s goroutines: the last cycle's total (60 leaked + 4) is not charted", src)
		}
		mustGet(t, v, base+"mutex", 200, `data-func="main.lockFunc"`, "100.0%")
		mustGet(t, v, base+"block", 200, `data-func="main.waitFunc"`, "80.0%", `id="block-timeline-chart"`)
		mustGet(t, v, base+"events", 200, "Events")
	}
	g := mustGet(t, v, "/s/received/shop/goroutines", 200, `class="marker leak"`, "top growing: main.leakFunc")
	if strings.Count(g, `class="marker leak"`) != 1 {
		t.Errorf("want exactly one leak marker")
	}
	mustGet(t, v, "/s/received/shop/events", 200, "goroutine_leak", "profile_skipped", "#5", "reason=busy type=cpu")
	// A tag filter keeps the cycles that carry the tag.
	tagged := mustGet(t, v, "/s/received/shop/goroutines?tag=env%3Dtest", 200, "main.leakFunc")
	if n := strings.Count(tagged, `class="pt"`); n != 6 {
		t.Errorf("goroutines with tag env=test: %d points, want 6", n)
	}
	mustGet(t, v, "/s/received/shop/mutex?tag=host%3Dhost1", 200, `data-func="main.lockFunc"`)
	other := mustGet(t, v, "/s/received/shop/goroutines?tag=env%3Dprod", 200, "no data in this range")
	if strings.Contains(other, "main.leakFunc") {
		t.Errorf("goroutines with tag env=prod still show main.leakFunc")
	}
	mustGet(t, v, "/s/local/basic/events", 200, "OutputDir has no events")
}

// The span pages read UploadRequest.spans as the receiver stored them
// (here batches without the agent's span timings: the percentiles are
// those of the sampled spans, and the page says so).
func TestSpanPagesShowPercentilesAndWaterfall(t *testing.T) {
	in, local := sixCycles(t)
	v := newTestViewer(t, in.dir, local)
	body := mustGet(t, v, "/s/received/shop/spans", 200, "checkout: latency percentiles (30 spans)", "search {q=x}: latency percentiles",
		`id="waterfall"`, "Sampled spans of cycle #6 (15 spans)", "18 of 18 points are the percentiles of the cycle's sampled spans")
	// checkout takes 10..50 ms in every cycle: p50 30 ms, p99 50 ms.
	if !strings.Contains(body, `p50 2026-11-30 12:05:00Z: 30ms`) || !strings.Contains(body, `p99 2026-11-30 12:05:00Z: 50ms`) {
		t.Fatalf("spans page: checkout percentiles not charted:\n%.4000s", body)
	}
	if n := strings.Count(body, `<g class="span"`); n != 15 {
		t.Fatalf("waterfall: %d spans drawn, want 15", n)
	}
	// The child is drawn under its parent, indented.
	if !regexp.MustCompile(`data-name="checkout"><text x="8"[^>]*>checkout</text>.*?data-name="db.query"><text x="20"`).MatchString(body) {
		t.Fatalf("waterfall: db.query is not indented under checkout")
	}
	first := mustGet(t, v, "/s/received/shop/spans?"+url.Values{"cycle": {cycleKeyOf(t, v, 0)}}.Encode(), 200, "Sampled spans of cycle #1")
	_ = first
	mustGet(t, v, "/s/local/basic/spans", 200, "No span in this range: the program made none")
}

func cycleKeyOf(t *testing.T, v *Viewer, i int) string {
	var key string
	if err := v.ix.db.QueryRow(`SELECT key FROM cycles WHERE source = 'received' ORDER BY start_ns LIMIT 1 OFFSET ?`, i).Scan(&key); err != nil {
		t.Fatal(err)
	}
	return key
}

// pprof's own views open on the merge of a range and of one window, and
// the label filter keeps only the samples of that span.
func TestPprofViewsOfARange(t *testing.T) {
	in, local := sixCycles(t)
	v := newTestViewer(t, in.dir, local)
	all := &selection{Source: "received", Service: "shop", From: t0.UnixNano(), To: t0.Add(time.Hour).UnixNano()}
	mustGet(t, v, pprofLink(all, "cpu", "flamegraph"), 200, "main.hotFunc", "main.coldFunc")
	top := mustGet(t, v, pprofLink(all, "cpu", "top"), 200, "main.hotFunc")
	if !strings.Contains(top, `"Name":"main.hotFunc","InlineLabel":"","Flat":5400000000`) { // 6 windows of 900 ms
		t.Errorf("top of the merge should total hotFunc's 6 × 900ms = 5.40s:\n%.3000s", top)
	}
	labelled := *all
	labelled.Label = [2]string{"span", "search"}
	fg := mustGet(t, v, pprofLink(&labelled, "cpu", "flamegraph"), 200, "main.coldFunc")
	if strings.Contains(fg, "main.hotFunc") {
		t.Errorf("the span=search flame graph still holds main.hotFunc")
	}
	one := *all
	one.To = one.From
	mustGet(t, v, pprofLink(&one, "cpu", "top"), 200, `"Flat":900000000`)
	mustGet(t, v, pprofLink(all, "heap", "top"), 200, "main.allocFunc")
	mustGet(t, v, pprofLink(all, "goroutine", "flamegraph"), 200, "main.leakFunc")
	mustGet(t, v, pprofLink(all, "mutex", "top"), 200, "main.lockFunc")
	mustGet(t, v, pprofLink(all, "block", "top"), 200, "main.waitFunc")
	if _, err := os.Stat("/usr/bin/dot"); err == nil {
		mustGet(t, v, pprofLink(all, "cpu", ""), 200, "main.hotFunc")
	}
	mustGet(t, v, pprofLink(all, "cpu", "nosuchview"), 404, "pprof has no view")
	empty := *all
	empty.From, empty.To = 1, 2
	mustGet(t, v, pprofLink(&empty, "cpu", "flamegraph"), 200, "no readable cpu profile")
}

// A damaged .pb.gz is named on the page; the other files still show.
func TestDamagedProfileIsNamedNotFatal(t *testing.T) {
	in, local := sixCycles(t)
	bad := filepath.Join(local, "basic", "cpu", "20261130T120600.000Z_20261130T120610.000Z.pb.gz")
	writeFile(t, bad, []byte("\x1f\x8bnot really gzip"))
	truncated := filepath.Join(local, "basic", "heap", "20261130T120600.000Z_20261130T120700.000Z.pb.gz")
	good, _ := os.ReadFile(filepath.Join(local, "basic", "heap", "20261130T120000.000Z_20261130T120100.000Z.pb.gz"))
	writeFile(t, truncated, good[:len(good)/2])
	writeFile(t, filepath.Join(local, "basic", "cpu", "garbage-name.pb.gz"), []byte("x"))
	// A damaged file behind a received batch line.
	recvCPU, _ := filepath.Glob(filepath.Join(in.dir, "shop", "cpu", "*.pb.gz"))
	os.WriteFile(recvCPU[0], []byte("damaged"), 0o600)
	v := newTestViewer(t, in.dir, local)

	mustGet(t, v, "/", 200, `<span class="warn">2 file(s), 1 other</span>`)
	cpu := mustGet(t, v, "/s/local/basic/cpu", 200, "could not be read", "20261130T120600.000Z_20261130T120610.000Z.pb.gz: damaged: not a pprof profile",
		"garbage-name.pb.gz: name is not", "merge of 7 windows")
	_ = cpu
	mustGet(t, v, "/s/local/basic/memory", 200, "20261130T120600.000Z_20261130T120700.000Z.pb.gz: damaged")
	mustGet(t, v, "/s/received/shop/cpu", 200, "damaged: not a pprof profile")
	all := &selection{Source: "local", Service: "basic", From: t0.UnixNano(), To: t0.Add(time.Hour).UnixNano()}
	mustGet(t, v, pprofLink(all, "cpu", "flamegraph"), 200, "main.hotFunc")
	onlyBad := &selection{Source: "local", Service: "basic", From: t0.Add(6 * cycle).UnixNano(), To: t0.Add(6 * cycle).UnixNano()}
	mustGet(t, v, pprofLink(onlyBad, "cpu", "flamegraph"), 200, "Nothing to show", "1 stored, none readable")
}

// Unknown types, empty and unknown services, bad ranges and bad links
// get a page that says so.
func TestBadInputGetsAClearPage(t *testing.T) {
	in, local := sixCycles(t)
	writeFile(t, filepath.Join(local, "basic", "weird", "20261130T120000.000Z_20261130T120010.000Z.pb.gz"), []byte("x"))
	os.MkdirAll(filepath.Join(local, "empty", "cpu"), 0o700)
	f, _ := os.OpenFile(filepath.Join(in.dir, batchesFile), os.O_APPEND|os.O_WRONLY, 0o600)
	fmt.Fprintf(f, "{not json\n")
	fmt.Fprintf(f, `{"batch_id":"%s","source":{"service":"shop"},"profiles":[{"type":"unspecified","start_unix_nano":%d,"end_unix_nano":%d,"file":"shop/x.pb.gz"}]}`+"\n",
		batchID(), t0.UnixNano(), t0.UnixNano())
	f.Close()
	v := newTestViewer(t, in.dir, local)

	mustGet(t, v, "/s/local/basic/", 200, `basic/weird: unknown profile type "weird"`)
	mustGet(t, v, "/s/received/shop/", 200, `unknown profile type "unspecified"`, "a line at byte")
	mustGet(t, v, "/s/local/empty/", 200, `No cycles are stored for service "empty"`)
	mustGet(t, v, "/s/local/nosuch/cpu", 200, `No cycles are stored for service "nosuch"`)
	mustGet(t, v, "/s/nosuch/basic/", 404, `There is no source "nosuch"`)
	mustGet(t, v, "/s/local/basic/flames", 404, `A service has no page "flames"`)
	mustGet(t, v, "/s/local/basic/cpu?from=yesterday", 400, "not a time")
	mustGet(t, v, "/s/local/basic/cpu?from=2026-11-30T13:00&to=2026-11-30T12:00", 400, "the range ends before it starts")
	mustGet(t, v, "/s/local/basic/cpu?from=2030-01-01T00:00&to=2030-01-02T00:00", 200, "no data in this range")
	mustGet(t, v, "/pprof/local/basic/weird/AAAA/flamegraph", 404, `"weird" is not one of`)
	mustGet(t, v, "/pprof/local/basic/cpu/!!!/flamegraph", 400, "damaged")
	mustGet(t, v, "/nowhere", 404, "There is no page at /nowhere")
}

// Pages follow the data: a new batch shows after the next Refresh, and
// /api/version changes so that open pages reload.
func TestPagesFollowNewCycles(t *testing.T) {
	in, local := sixCycles(t)
	v := newTestViewer(t, in.dir, local)
	_, before := get(t, v, "/api/version")
	in.send(t, testBatch(t, "shop", 6, nil, false))
	writeLocal(t, local, "basic", 6)
	if err := v.Refresh(); err != nil {
		t.Fatal(err)
	}
	_, after := get(t, v, "/api/version")
	if after == before {
		t.Fatalf("/api/version stayed %s after new cycles", before)
	}
	mustGet(t, v, "/s/received/shop/", 200, "7 cycles")
	mustGet(t, v, "/s/local/basic/cpu", 200, "merge of 7 windows")
	if err := v.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, again := get(t, v, "/api/version"); again != after {
		t.Fatalf("/api/version changed with nothing new")
	}
}

// An index built cycle by cycle as data arrives equals one rebuilt from
// the files alone.
func TestRebuiltIndexEqualsLiveIndex(t *testing.T) {
	in := newIngest(t)
	local := filepath.Join(t.TempDir(), "out")
	live := newTestViewer(t, in.dir, local)
	for i := 0; i < 5; i++ {
		var evs []*ingestpb.Event
		if i == 3 {
			evs = append(evs, leakEvent(i))
		}
		in.send(t, testBatch(t, "shop", i, evs, i%2 == 0))
		writeLocal(t, local, "basic", i)
		if i == 2 {
			writeFile(t, filepath.Join(local, "basic", "cpu", "20261130T130000.000Z_20261130T130010.000Z.pb.gz"), []byte("bad"))
		}
		if err := live.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	opts := live.opts
	opts.IndexPath = filepath.Join(t.TempDir(), "rebuilt.db")
	if err := Rebuild(opts); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	a, err := live.ix.dump()
	if err != nil {
		t.Fatal(err)
	}
	b, err := rebuilt.ix.dump()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) < 100 {
		t.Fatalf("the live index holds only %d rows", len(a))
	}
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		for i := 0; i < len(a) && i < len(b); i++ {
			if a[i] != b[i] {
				t.Fatalf("row %d differs:\nlive:    %s\nrebuilt: %s", i, a[i], b[i])
			}
		}
		t.Fatalf("live has %d rows, rebuilt %d", len(a), len(b))
	}
}

// An index left by another schema version is replaced, not misread.
func TestIndexOfAnotherVersionIsRebuilt(t *testing.T) {
	in, local := sixCycles(t)
	path := filepath.Join(t.TempDir(), "index.db")
	opts := Options{IndexPath: path, Sources: []Source{{Name: "received", Dir: in.dir, Kind: KindReceived}, {Name: "local", Dir: local, Kind: KindLocal}}}
	v, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	v.Refresh()
	v.ix.db.Exec(`UPDATE meta SET value = 'old' WHERE key = 'schema'`)
	v.Close()
	v, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, _, cycles, _ := v.bounds("received", "shop"); cycles != 0 {
		t.Fatalf("the old index was kept (%d cycles before refresh)", cycles)
	}
	v.Refresh()
	mustGet(t, v, "/s/received/shop/", 200, "6 cycles")
}

// A range of whole hours merges their rollups, and gives the totals of
// the files; a profile arriving late in an hour already rolled up counts.
func TestHourlyRollupsGiveTheTotalsOfTheFiles(t *testing.T) {
	local := filepath.Join(t.TempDir(), "out")
	for i := 0; i < 130; i++ {
		if i != 70 {
			writeLocal(t, local, "basic", i)
		}
	}
	v := newTestViewer(t, filepath.Join(t.TempDir(), "none"), local)
	n, err := v.BuildRollups()
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 { // hours 12:00 and 13:00 of five types; 14:00 is not over
		t.Fatalf("BuildRollups made %d rollups, want 10", n)
	}
	all := &selection{Source: "local", Service: "basic", From: t0.UnixNano(), To: t0.Add(3 * time.Hour).UnixNano()}
	mustGet(t, v, pprofLink(all, "cpu", "top"), 200, `"Name":"main.hotFunc","InlineLabel":"","Flat":116100000000`) // 129 × 900 ms
	writeLocal(t, local, "basic", 70)
	if err := v.Refresh(); err != nil {
		t.Fatal(err)
	}
	mustGet(t, v, pprofLink(all, "cpu", "top"), 200, `"Name":"main.hotFunc","InlineLabel":"","Flat":117000000000`) // 130 × 900 ms
	var rebuilt int64
	v.ix.db.QueryRow(`SELECT profiles FROM rollups WHERE type = 'cpu' AND hour_ns = ?`, t0.Add(time.Hour).UnixNano()).Scan(&rebuilt)
	if rebuilt != 60 {
		t.Fatalf("the 13:00 cpu rollup merged %d profiles after the late one, want 60", rebuilt)
	}
}

// A backlog larger than one scan step is indexed whole, step by step.
func TestBacklogIsIndexedInSteps(t *testing.T) {
	defer func(b, f int) { scanBatches, scanFiles = b, f }(scanBatches, scanFiles)
	scanBatches, scanFiles = 4, 20
	in := newIngest(t)
	local := filepath.Join(t.TempDir(), "out")
	for i := 0; i < 11; i++ {
		in.send(t, testBatch(t, "shop", i, nil, false))
		writeLocal(t, local, "basic", i) // 55 files
	}
	v := newTestViewer(t, in.dir, local)
	if _, _, cycles, profiles := v.bounds("local", "basic"); cycles != 11 || profiles != 55 {
		t.Fatalf("local: indexed %d cycles, %d profiles; want 11, 55", cycles, profiles)
	}
	if _, _, cycles, profiles := v.bounds("received", "shop"); cycles != 11 || profiles != 55 {
		t.Fatalf("received: indexed %d cycles, %d profiles; want 11, 55", cycles, profiles)
	}
}

// Pages, pprof's views and indexing run at the same time without a race
// (go test -race) and without an error page.
func TestPagesServeWhileIndexing(t *testing.T) {
	in, local := sixCycles(t)
	v := newTestViewer(t, in.dir, local)
	all := &selection{Source: "received", Service: "shop", From: t0.UnixNano(), To: t0.Add(time.Hour).UnixNano()}
	paths := []string{"/", "/s/received/shop/", "/s/received/shop/goroutines", "/s/local/basic/cpu",
		pprofLink(all, "cpu", "flamegraph"), pprofLink(all, "heap", "top"), pprofLink(all, "goroutine", "flamegraph")}
	done := make(chan error)
	go func() {
		var err error
		for i := 6; i < 10 && err == nil; i++ {
			in.send(t, testBatch(t, "shop", i, nil, true))
			writeLocal(t, local, "basic", i)
			err = v.Refresh()
		}
		done <- err
	}()
	errs := make(chan string, len(paths))
	for _, p := range paths {
		go func(p string) {
			for i := 0; i < 3; i++ {
				if code, body := get(t, v, p); code != 200 {
					errs <- fmt.Sprintf("GET %s: %d %.300s", p, code, body)
					return
				}
			}
			errs <- ""
		}(p)
	}
	for range paths {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustGet(t, v, "/s/received/shop/", 200, "10 cycles")
}
