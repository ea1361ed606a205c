package pyroscope

// A real agent (pprofio.New, Start, Stop) pushing to Pyroscope's own
// Connect handler over TLS: what arrives (labels, window times, pprof that
// google/pprof parses, headers), the secrets kept out of every log line,
// each destination surviving the other's outage without a loss, and the
// answers Pyroscope gives (400, 413, 429, 5xx, resets) handled as the
// README's table says. Every wait is for work done (pushes, cycles), with
// a guard against hangs only.

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"

	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"github.com/pprofio/pprofio/tests/internal/testkit"
)

const (
	testUser     = "123456"
	testPassword = "glc_pw-7c1e0d9b8a"
	testToken    = "bearer-tok-2f4a6c8e"
	testTenant   = "team-a"
)

var allTypes = []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap, pprofio.ProfileGoroutine,
	pprofio.ProfileMutex, pprofio.ProfileBlock}

// nameOfType is the __name__ of each type, and the sample types its pprof holds.
var nameOfType = map[ingestpb.ProfileType]string{
	ingestpb.ProfileType_PROFILE_TYPE_CPU: "process_cpu", ingestpb.ProfileType_PROFILE_TYPE_HEAP: "memory",
	ingestpb.ProfileType_PROFILE_TYPE_GOROUTINE: "goroutines", ingestpb.ProfileType_PROFILE_TYPE_MUTEX: "mutex",
	ingestpb.ProfileType_PROFILE_TYPE_BLOCK: "block",
}

var wantSampleType = map[string]string{
	"process_cpu": "cpu", "memory": "alloc_space", "goroutines": "goroutine", "mutex": "delay", "block": "delay",
}

// isolate keeps the test's environment out of New (PPROFIO_* and the cache folder).
func isolate(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PPROFIO_") {
			t.Setenv(k, "")
		}
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("NO_PROXY", "127.0.0.1,localhost,::1")
	t.Setenv("no_proxy", "127.0.0.1,localhost,::1")
}

// agentConfig is an agent on a 1 s cycle pushing to pyro (and, with in,
// uploading to the reference receiver too), with every profile type.
func agentConfig(t *testing.T, f tlsFiles, pyro *pyroServer, in *ingestServer, logs *logCapture) pprofio.Config {
	cfg := pprofio.Config{
		ServiceName:  "checkout",
		Tags:         map[string]string{"env": "test", "region": "eu-1"},
		PyroscopeURL: pyro.URL,
		CAFile:       f.CAFile,
		OutputDir:    t.TempDir(), // the files written are the count every destination must reach
		SpoolDir:     t.TempDir(),
		Profiles:     allTypes,
		SampleRate:   time.Second,
		CPUDuration:  250 * time.Millisecond,
		StartJitter:  -1,
		// Generous: Stop returns as soon as nothing is left to send.
		StopTimeout:    2 * time.Minute,
		ConnectTimeout: time.Minute,
		RequestTimeout: 2 * time.Minute,
		Logger:         slog.New(logs),
	}
	if in != nil {
		cfg.IngestURL, cfg.APIKey = in.URL, testAPIKey
	}
	return cfg
}

// workload keeps the program busy in every way a profile shows: CPU,
// allocation, lock contention and blocking.
func workload(t *testing.T) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	ch := make(chan int)
	var sink atomic.Uint64
	wg.Add(3)
	go func() {
		defer wg.Done()
		h := uint64(14695981039346656037)
		for !stop.Load() {
			for i := 0; i < 1<<16; i++ {
				h = (h ^ uint64(i)) * 1099511628211
			}
			b := make([]byte, 64<<10)
			b[0] = byte(h)
			sink.Add(uint64(b[0]))
		}
	}()
	go func() {
		defer wg.Done()
		for !stop.Load() {
			mu.Lock()
			time.Sleep(time.Millisecond)
			mu.Unlock()
			select {
			case ch <- 1:
			case <-time.After(time.Millisecond):
			}
		}
	}()
	go func() {
		defer wg.Done()
		for !stop.Load() {
			mu.Lock()
			runtime.Gosched()
			mu.Unlock()
			select {
			case <-ch:
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		stop.Store(true)
		wg.Wait()
	})
}

func start(t *testing.T, cfg pprofio.Config) *pprofio.Profiler {
	t.Helper()
	p, err := pprofio.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, waitGuard, what, cond)
}

func stop(t *testing.T, p *pprofio.Profiler) pprofio.Stats {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	return p.Stats()
}

func labelsOf(s *pushv1.RawProfileSeries) map[string]string {
	m := map[string]string{}
	for _, l := range s.Labels {
		m[l.Name] = l.Value
	}
	return m
}

// window is a profile's identity across destinations: its type and start.
type window struct {
	name  string
	start int64
}

// checkSeries checks every series as Pyroscope reads it and returns their windows.
func checkSeries(t *testing.T, series []*pushv1.RawProfileSeries, from, to time.Time) map[window]int {
	t.Helper()
	seen := map[window]int{}
	for _, s := range series {
		l := labelsOf(s)
		want := map[string]string{"service_name": "checkout", "env": "test", "region": "eu-1", "__delta__": "false"}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("series %v: %s=%q, want %q", l, k, l[k], v)
			}
		}
		st, ok := wantSampleType[l["__name__"]]
		if !ok || len(l) != 5 || len(s.Samples) != 1 {
			t.Errorf("series %v with %d samples: want one of %v, 5 labels, 1 sample", l, len(s.Samples), wantSampleType)
			continue
		}
		p, err := profile.ParseData(s.Samples[0].RawProfile)
		if err != nil {
			t.Errorf("%s: google/pprof cannot parse the sample: %v", l["__name__"], err)
			continue
		}
		has := false
		for _, x := range p.SampleType {
			has = has || x.Type == st
		}
		if !has {
			t.Errorf("%s: sample types %v, want %q among them", l["__name__"], p.SampleType, st)
		}
		at := time.Unix(0, p.TimeNanos)
		if at.Before(from) || at.After(to) {
			t.Errorf("%s: time %v outside the run [%v, %v]", l["__name__"], at, from, to)
		}
		if l["__name__"] == "process_cpu" && p.DurationNanos <= 0 {
			t.Errorf("process_cpu: duration %d, want the window's", p.DurationNanos)
		}
		seen[window{l["__name__"], p.TimeNanos}]++
	}
	return seen
}

func TestAgentPushesEveryProfileTypeWithItsLabelsAndAuth(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))
	for _, c := range []struct {
		name             string
		set              func(*pprofio.Config)
		wantAuth, tenant string
	}{
		{"basic auth and tenant", func(c *pprofio.Config) {
			c.PyroscopeUser, c.PyroscopePassword, c.PyroscopeTenantID = testUser, testPassword, testTenant
		}, basic, testTenant},
		{"bearer token", func(c *pprofio.Config) { c.PyroscopeToken = testToken }, "Bearer " + testToken, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			isolate(t)
			f := newTLS(t)
			pyro := newPyroServer(t, f)
			logs := &logCapture{}
			cfg := agentConfig(t, f, pyro, nil, logs)
			c.set(&cfg)
			workload(t)
			from := time.Now()
			p := start(t, cfg)
			names := func() map[string]bool {
				m := map[string]bool{}
				for _, s := range pyro.series() {
					m[labelsOf(s)["__name__"]] = true
				}
				return m
			}
			waitFor(t, "a push of every profile type", func() bool { return len(names()) == len(wantSampleType) })
			st := stop(t, p)
			to := time.Now()

			series := pyro.series()
			seen := checkSeries(t, series, from, to)
			for w, n := range seen {
				if n != 1 {
					t.Errorf("%v arrived %d times", w, n)
				}
			}
			if uint64(len(series)) != st.ProfilesWritten {
				t.Errorf("%d series pushed, %d profiles written locally: want the same", len(series), st.ProfilesWritten)
			}
			pushes := pyro.all()
			if st.PyroscopeBatchesSent != uint64(len(pushes)) || st.PyroscopeBatchesQueued != st.PyroscopeBatchesSent ||
				st.PyroscopeProfilesDropped != 0 || st.PyroscopeQueuedBatches != 0 {
				t.Errorf("%d requests; stats %+v", len(pushes), st)
			}
			for _, p := range pushes {
				h := p.Header
				if h.Get("Authorization") != c.wantAuth || h.Get("X-Scope-OrgID") != c.tenant ||
					h.Get("Content-Type") != "application/proto" || h.Get("Content-Encoding") != "gzip" ||
					!strings.HasPrefix(h.Get("User-Agent"), "pprofio-go/") {
					t.Fatalf("request headers %v", h)
				}
			}
			text := logs.text()
			for _, secret := range []string{testPassword, testToken, basic[len("Basic "):]} {
				if strings.Contains(text, secret) {
					t.Fatalf("a secret is in the log:\n%s", text)
				}
			}
		})
	}
}

// profileWindows are the windows of the profiles the ingest service stored.
func profileWindows(t *testing.T, ps []*ingestpb.Profile) map[window]int {
	t.Helper()
	m := map[window]int{}
	for _, p := range ps {
		if _, err := profile.ParseData(p.GetPprof()); err != nil {
			t.Fatalf("an ingest profile does not parse: %v", err)
		}
		m[window{nameOfType[p.GetType()], p.GetStartUnixNano()}]++
	}
	return m
}

func sameWindows(t *testing.T, a, b map[window]int) {
	t.Helper()
	var diff []string
	for w, n := range a {
		if b[w] != n {
			diff = append(diff, fmt.Sprintf("%v: %d vs %d", w, n, b[w]))
		}
	}
	for w, n := range b {
		if _, ok := a[w]; !ok {
			diff = append(diff, fmt.Sprintf("%v: 0 vs %d", w, n))
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("the destinations disagree (ingest vs Pyroscope):\n%s", strings.Join(diff, "\n"))
	}
}

func TestOneDestinationDownLosesNothingForEither(t *testing.T) {
	for _, pyroDown := range []bool{true, false} {
		name := map[bool]string{true: "Pyroscope down, ingest up", false: "ingest down, Pyroscope up"}[pyroDown]
		t.Run(name, func(t *testing.T) {
			isolate(t)
			f := newTLS(t)
			pyro := newPyroServer(t, f)
			in := newIngestServer(t, f)
			logs := &logCapture{}
			cfg := agentConfig(t, f, pyro, in, logs)
			cfg.PyroscopeToken = testToken
			workload(t)
			if pyroDown {
				pyro.fault.Store(503) // Retry-After: 1
			} else {
				in.down.Store(503)
			}
			p := start(t, cfg)
			// The one that is up keeps receiving while the other refuses:
			// three cycles delivered there, none here.
			waitFor(t, "three cycles delivered to the destination that is up", func() bool {
				if pyroDown {
					return len(pyro.all()) >= 2 && len(in.profiles()) > 0 && p.Stats().BatchesSent >= 3
				}
				return p.Stats().BatchesRetried >= 2 && p.Stats().PyroscopeBatchesSent >= 3
			})
			if pyroDown {
				// resets and 500s too, then back
				pyro.fault.Store(faultReset)
				n := len(pyro.all())
				waitFor(t, "a reset", func() bool { return len(pyro.all()) > n })
				pyro.fault.Store(500)
				n = len(pyro.all())
				waitFor(t, "a 500", func() bool { return len(pyro.all()) > n })
				if len(pyro.accepted()) != 0 {
					t.Fatalf("Pyroscope accepted a push while down")
				}
				pyro.fault.Store(0)
			} else {
				if len(in.profiles()) != 0 {
					t.Fatalf("the ingest service took a batch while down")
				}
				in.down.Store(0)
			}
			waitFor(t, "both destinations to catch up", func() bool {
				s := p.Stats()
				return s.QueuedBatches == 0 && s.PyroscopeQueuedBatches == 0 && s.BatchesSent > 3 &&
					s.PyroscopeBatchesSent > 3
			})
			st := stop(t, p)

			ingest := profileWindows(t, in.profiles())
			pushed := checkSeries(t, pyro.series(), time.Unix(0, 0), time.Now())
			sameWindows(t, ingest, pushed)
			total := 0
			for _, n := range pushed {
				total += n
			}
			if uint64(total) != st.ProfilesWritten || uint64(len(in.profiles())) != st.ProfilesWritten {
				t.Errorf("Pyroscope %d series, ingest %d profiles, %d written locally: want all equal",
					total, len(in.profiles()), st.ProfilesWritten)
			}
			if st.PyroscopeProfilesDropped+st.ProfilesDroppedUpload+st.BatchesDroppedSpool != 0 ||
				st.PyroscopeQueuedBatches != 0 || st.QueuedBatches != 0 {
				t.Errorf("losses or leftovers: %+v", st)
			}
			t.Logf("%d profiles in %d ingest batches and %d pushes; %d ingest and %d Pyroscope retries",
				total, st.BatchesSent, st.PyroscopeBatchesSent, st.BatchesRetried, st.PyroscopeBatchesRetried)
			retried := map[bool]uint64{true: st.PyroscopeBatchesRetried, false: st.BatchesRetried}[pyroDown]
			if retried < 2 {
				t.Errorf("%d retries on the destination that was down", retried)
			}
			if strings.Contains(logs.text(), testToken) || strings.Contains(logs.text(), testAPIKey) {
				t.Errorf("a secret is in the log")
			}
		})
	}
}

func TestPyroscopeAnswers(t *testing.T) {
	run := func(t *testing.T, setup func(*pyroServer)) (pprofio.Stats, *pyroServer, *logCapture) {
		isolate(t)
		f := newTLS(t)
		pyro := newPyroServer(t, f)
		logs := &logCapture{}
		cfg := agentConfig(t, f, pyro, nil, logs)
		cfg.Profiles = []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap, pprofio.ProfileGoroutine}
		workload(t)
		setup(pyro)
		p := start(t, cfg)
		waitFor(t, "three pushes accepted after the faults", func() bool {
			return pyro.scriptLeft() == 0 && len(pyro.accepted()) >= 3
		})
		return stop(t, p), pyro, logs
	}
	written := func(t *testing.T, st pprofio.Stats, pyro *pyroServer, lost uint64) {
		t.Helper()
		series := pyro.series()
		checkSeries(t, series, time.Unix(0, 0), time.Now())
		if uint64(len(series))+lost != st.ProfilesWritten {
			t.Errorf("%d series arrived and %d were dropped, of %d profiles", len(series), lost, st.ProfilesWritten)
		}
	}

	t.Run("400 drops the push for good, counted and logged", func(t *testing.T) {
		st, pyro, logs := run(t, func(s *pyroServer) { s.setScript(400, 400) })
		refused := 0
		for _, p := range pyro.all() {
			if p.Status == 400 {
				refused++
			}
		}
		if refused != 2 || st.PyroscopeBatchesDroppedRejected != 2 || st.PyroscopeBatchesRetried != 0 {
			t.Errorf("%d answered 400; stats %+v", refused, st)
		}
		if uint64(len(pyro.all())) != st.PyroscopeBatchesSent+2 {
			t.Errorf("%d requests for %d pushes sent and 2 dropped: a dropped push was sent again",
				len(pyro.all()), st.PyroscopeBatchesSent)
		}
		if logs.count("dropped batch", "for Pyroscope", "HTTP 400") != 2 {
			t.Errorf("want a log line per dropped push:\n%s", logs.text())
		}
		written(t, st, pyro, st.PyroscopeProfilesDropped)
		if st.PyroscopeProfilesDropped == 0 {
			t.Errorf("no profiles counted in the dropped pushes")
		}
	})

	t.Run("413 splits a push by series until each fits", func(t *testing.T) {
		st, pyro, _ := run(t, func(s *pyroServer) { s.maxSeries.Store(1) })
		if st.PyroscopeBatchesSplit == 0 || st.PyroscopeBatchesDroppedRejected != 0 || st.PyroscopeProfilesDropped != 0 {
			t.Errorf("stats %+v", st)
		}
		for _, p := range pyro.accepted() {
			if len(p.Req.Series) != 1 {
				t.Errorf("an accepted push of %d series, over the server's limit", len(p.Req.Series))
			}
		}
		written(t, st, pyro, 0)
	})

	t.Run("429, 5xx and resets are retried until delivered", func(t *testing.T) {
		st, pyro, logs := run(t, func(s *pyroServer) { s.setScript(429, 500, faultReset, 503, 502) })
		// libcurl itself sends again, once, a request whose kept
		// connection was reset before any answer: the reset may not count.
		if st.PyroscopeBatchesRetried < 4 || st.PyroscopeBatchesRetried > 5 || st.PyroscopeProfilesDropped != 0 {
			t.Errorf("stats %+v", st)
		}
		if logs.count("pushes to Pyroscope are failing") != 1 || logs.count("pushes to Pyroscope are going through again") != 1 {
			t.Errorf("want one line when failing began and one when it ended:\n%s", logs.text())
		}
		written(t, st, pyro, 0)
	})
}

// A refused credential (401) pauses pushes for a minute and keeps them:
// Stop does not cut the pause short (with the default StopTimeout it ends
// first), the pushes stay in SpoolDir/pyroscope, and the next process with
// the same SpoolDir delivers them.
func TestRefusedCredentialsKeepPushesForTheNextProcess(t *testing.T) {
	isolate(t)
	f := newTLS(t)
	pyro := newPyroServer(t, f)
	pyro.fault.Store(401)
	logs := &logCapture{}
	cfg := agentConfig(t, f, pyro, nil, logs)
	cfg.PyroscopeUser, cfg.PyroscopePassword = testUser, testPassword
	cfg.Profiles = []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap}
	cfg.StopTimeout = 0 // the default, 5 s: shorter than the pause
	workload(t)
	p := start(t, cfg)
	waitFor(t, "a 401 and three cycles", func() bool { return len(pyro.all()) >= 1 && p.Stats().Cycles >= 3 })
	first := stop(t, p)
	if first.PyroscopeQueuedBatches == 0 || first.PyroscopeBatchesSent != 0 || first.PyroscopeProfilesDropped != 0 {
		t.Fatalf("after the 401s: %+v", first)
	}
	if n := logs.count("Pyroscope refused the credentials"); n != 1 {
		t.Errorf("%d log lines about the credentials, want 1:\n%s", n, logs.text())
	}
	if strings.Contains(logs.text(), testPassword) {
		t.Errorf("the password is in the log")
	}

	pyro.fault.Store(0)
	cfg.OutputDir = t.TempDir()
	cfg.StopTimeout = 2 * time.Minute
	p = start(t, cfg)
	waitFor(t, "the earlier process's pushes", func() bool {
		s := p.Stats()
		return s.PyroscopeBatchesAdopted > 0 && s.PyroscopeBatchesSent >= uint64(first.PyroscopeQueuedBatches)
	})
	second := stop(t, p)
	if second.PyroscopeBatchesAdopted != uint64(first.PyroscopeQueuedBatches) {
		t.Errorf("adopted %d pushes, %d were left", second.PyroscopeBatchesAdopted, first.PyroscopeQueuedBatches)
	}
	series := pyro.series()
	seen := checkSeries(t, series, time.Unix(0, 0), time.Now())
	if want := first.ProfilesWritten + second.ProfilesWritten; uint64(len(series)) != want || len(seen) != len(series) {
		t.Errorf("%d series (%d distinct) arrived; the two processes wrote %d profiles", len(series), len(seen), want)
	}
}
