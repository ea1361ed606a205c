package e2e

// End-to-end tests of delivery to the ingest service: a real agent uploads
// over HTTPS (libcurl in the C core) to the project's reference receiver
// (examples/ingest-server/receiver), run in this process over real TLS with
// its own throwaway CA, or across a process boundary where a crash or a
// signal has to be seen from outside. Helpers: delivery_helpers_test.go.
//
// No test here runs in parallel: the process has one CPU profiler.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/pprofio/pprofio"
	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// TestDeliveryBatches: over four cycles, every cycle's batch arrives once,
// in order, with the contract's headers, and decodes: the Source describes
// this process, each batch holds one CPU and one heap profile as raw pprof,
// the sequence counts 1, 2, 3, ... and Stats agree with what arrived.
func TestDeliveryBatches(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{})
	logs := &logCapture{}
	defer dumpOnFailure(t, logs, in)
	workload(t)
	const service = "e2e-delivery"
	spool := t.TempDir()
	begin := time.Now()
	cfg := deliveryConfig(in, service, spool, logs)
	p := startProfiler(t, cfg)
	waitFor(t, "four batches at the receiver", func() bool { return len(in.distinctAccepted()) >= 4 })
	timedStop(t, p)
	end := time.Now()
	in.settle(t)
	s := p.Stats()
	t.Logf("stats: %+v", s)

	exs := in.done()
	if len(exs) < 4 {
		t.Fatalf("%d requests, want at least 4", len(exs))
	}
	host, _ := os.Hostname()
	instance := ""
	ids := map[string]bool{}
	var wire uint64
	for i, e := range exs {
		checkHeaders(t, e)
		wire += uint64(len(e.Wire))
		if e.Status != http.StatusOK || e.Req == nil {
			t.Errorf("request %d: %v: want every upload of a clean run decoded and accepted (200)", i+1, e)
			continue
		}
		r := e.Req
		if !hex32RE.MatchString(r.GetBatchId()) || ids[r.GetBatchId()] {
			t.Errorf("request %d: batch_id %q: want 32 lowercase hex digits, new each batch", i+1, r.GetBatchId())
		}
		ids[r.GetBatchId()] = true
		if r.GetSequence() != uint64(i+1) {
			t.Errorf("request %d: sequence %d, want %d", i+1, r.GetSequence(), i+1)
		}
		src := r.GetSource()
		if instance == "" {
			instance = src.GetInstanceId()
		}
		if !hex32RE.MatchString(src.GetInstanceId()) || src.GetInstanceId() != instance {
			t.Errorf("request %d: instance_id %q: want 32 hex digits, the same in every batch (%q)", i+1,
				src.GetInstanceId(), instance)
		}
		checks := []struct {
			field     string
			got, want any
		}{
			{"service", src.GetService(), service},
			{"tags", fmt.Sprint(src.GetTags()), fmt.Sprint(cfg.Tags)},
			{"hostname", src.GetHostname(), host},
			{"pid", src.GetPid(), int64(os.Getpid())},
			{"agent_version", src.GetAgentVersion(), pprofio.Version},
			{"runtime_version", src.GetRuntimeVersion(), runtime.Version()},
			{"os", src.GetOs(), runtime.GOOS},
			{"arch", src.GetArch(), runtime.GOARCH},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("request %d: source.%s = %v, want %v", i+1, c.field, c.got, c.want)
			}
		}
		// The process (and this package) started before the test did.
		if ps := src.GetProcessStartUnixNano(); ps <= 0 || ps > begin.UnixNano() {
			t.Errorf("request %d: process_start_unix_nano = %d, want in (0, %d]", i+1, ps, begin.UnixNano())
		}
		for _, ev := range r.GetEvents() {
			if ev.GetKind() == "data_dropped" || ev.GetKind() == "profile_skipped" {
				t.Errorf("request %d: event %s %q %v in a clean run", i+1, ev.GetKind(), ev.GetMessage(), ev.GetAttributes())
			}
		}
		checkProfiles(t, e, begin, end)
	}
	n := uint64(len(exs))
	if s.BatchesSent != n || s.BatchesQueued != n || s.Cycles != n {
		t.Errorf("Stats: BatchesSent %d, BatchesQueued %d, Cycles %d; the receiver got %d batches (one a cycle)",
			s.BatchesSent, s.BatchesQueued, s.Cycles, n)
	}
	if s.QueuedBatches != 0 || s.SpoolBytes != 0 || s.BatchesRetried != 0 {
		t.Errorf("Stats after Stop: QueuedBatches %d, SpoolBytes %d, BatchesRetried %d; want 0, 0, 0",
			s.QueuedBatches, s.SpoolBytes, s.BatchesRetried)
	}
	if s.BytesSent == 0 || s.BytesSent != wire {
		t.Errorf("BytesSent = %d, but the receiver got %d bytes of bodies", s.BytesSent, wire)
	}
	noUploadDrops(t, s)
	if left := spoolBatches(t, spool); len(left) != 0 {
		t.Errorf("%d batch file(s) left in the spool after everything was delivered: %v", len(left), left)
	}
	// The receiver's own account: each batch stored once, in order.
	stored := in.stored(t)
	if len(stored) != len(exs) {
		t.Errorf("the receiver stored %d batches, want %d", len(stored), len(exs))
	}
	for i := range stored {
		if i < len(exs) && exs[i].Req != nil && stored[i].BatchID != exs[i].Req.GetBatchId() {
			t.Errorf("stored batch %d is %s, want %s", i+1, stored[i].BatchID, exs[i].Req.GetBatchId())
		}
	}
	if recs := logs.find(slog.LevelError); len(recs) != 0 {
		t.Errorf("%d Error records in a clean run", len(recs))
	}
	checkNoKeyInLogs(t, logs)
}

// TestDeliveryOutage: the ingest service answers 503 for four cycles and
// then recovers. Nothing is lost, nothing is accepted twice, and the
// backlog arrives oldest first: the receiver has sequences 1..N, each
// stored once, in order; Stats count the failed attempts and no drop, and
// the failure is logged once, not per attempt.
func TestDeliveryOutage(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{})
	logs := &logCapture{}
	defer dumpOnFailure(t, logs, in)
	workload(t)
	spool := t.TempDir()
	p := startProfiler(t, deliveryConfig(in, "e2e-outage", spool, logs))
	waitFor(t, "the first batch", func() bool { return len(in.distinctAccepted()) >= 1 })

	// The outage: 503 with Retry-After: 1 (so retries come every second,
	// not after an ever longer backoff), until four batches wait on disk.
	in.setDown(http.StatusServiceUnavailable)
	waitFor(t, "four batches spooled during the outage", func() bool {
		return len(spoolBatches(t, spool)) >= 4
	})
	if q := p.Stats().QueuedBatches; q < 3 {
		t.Errorf("QueuedBatches = %d during the outage, want the spooled batches counted", q)
	}
	in.setDown(0)
	waitFor(t, "the backlog delivered", func() bool {
		s := p.Stats()
		return s.QueuedBatches == 0 && uint64(len(in.distinctAccepted())) == s.BatchesQueued
	})
	timedStop(t, p)
	in.setDown(0)
	in.settle(t)
	s := p.Stats()
	t.Logf("stats: %+v", s)

	exs := in.done()
	outage, failed := 0, 0
	for _, e := range exs {
		checkHeaders(t, e)
		if e.Outage {
			outage++
		}
		if !e.accepted() {
			failed++
		}
	}
	if outage < 2 {
		t.Errorf("%d attempts during the outage, want several", outage)
	}
	n := int(s.BatchesQueued)
	accepted := in.acceptedUploads()
	if len(accepted) == 0 {
		t.Fatal("nothing accepted")
	}
	instance := accepted[0].Req.GetSource().GetInstanceId()
	checkSequences(t, accepted, instance, n)
	checkHeadOfLine(t, exs, instance)
	// Each batch was stored (200) exactly once; a 409 would be a retry of
	// one that had landed, which is fine.
	stored := map[string]int{}
	for _, e := range exs {
		if e.Status == http.StatusOK {
			stored[e.Req.GetBatchId()]++
		}
	}
	for id, c := range stored {
		if c != 1 {
			t.Errorf("batch %s stored %d times", id, c)
		}
	}
	// The receiver's own account.
	sb := in.stored(t)
	for i, b := range sb {
		if b.Sequence != uint64(i+1) {
			t.Errorf("the receiver's batch %d has sequence %d, want %d", i+1, b.Sequence, i+1)
		}
	}
	if len(sb) != n {
		t.Errorf("the receiver stored %d batches, want %d", len(sb), n)
	}
	if s.BatchesSent != uint64(n) || s.QueuedBatches != 0 || s.SpoolBytes != 0 {
		t.Errorf("Stats: BatchesSent %d, QueuedBatches %d, SpoolBytes %d; want %d, 0, 0",
			s.BatchesSent, s.QueuedBatches, s.SpoolBytes, n)
	}
	if s.BatchesRetried == 0 || s.BatchesRetried != uint64(failed) {
		t.Errorf("BatchesRetried = %d, but %d attempts failed at the receiver", s.BatchesRetried, failed)
	}
	if s.Cycles != uint64(n) {
		t.Errorf("Cycles = %d, batches %d: want one batch a cycle", s.Cycles, n)
	}
	noUploadDrops(t, s)
	if left := spoolBatches(t, spool); len(left) != 0 {
		t.Errorf("%d batch file(s) left in the spool: %v", len(left), left)
	}
	// Logged per change of state, not per attempt.
	if w := logs.find(slog.LevelWarn, "failing"); len(w) != 1 {
		t.Errorf("%d Warn records about failing uploads over %d failed attempts, want exactly 1", len(w), failed)
	}
	if r := logs.find(slog.LevelInfo, "going through"); len(r) != 1 {
		t.Errorf("%d Info records about uploads going through again, want exactly 1", len(r))
	}
	checkNoKeyInLogs(t, logs)
}

// TestDeliveryAfterCrash: a process runs the agent while the ingest service
// cannot be reached, spools its batches, and is killed (SIGKILL: no Stop,
// no cleanup). The next process with the same SpoolDir delivers them: the
// receiver gets the dead process's batches, sequences 1..k, under its own
// instance_id and pid, before the new process's own, and the new agent
// counts them as adopted.
func TestDeliveryAfterCrash(t *testing.T) {
	if os.Getenv(childEnv) == "delivery-crash" {
		crashChild(t)
		return
	}
	isolateEnv(t)
	const service = "e2e-crash"
	spool := t.TempDir()
	var out syncBuffer
	cmd := childCmd("TestDeliveryAfterCrash", "delivery-crash", envURL+"="+closedPortURL(t), envSpool+"="+spool)
	cmd.Stdout, cmd.Stderr = &out, &out
	childStart := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	waitFor(t, "the child to spool three batches", func() bool {
		select {
		case <-exited:
			t.Fatalf("the child exited early (%s):\n%s", exitDescription(cmd.ProcessState), out.String())
		default:
		}
		return len(spoolBatches(t, spool)) >= 3
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killed := time.Now()
	childPID := int64(cmd.Process.Pid)
	t.Logf("child %d: %s", childPID, exitDescription(cmd.ProcessState))
	spooled := spoolBatches(t, spool)
	k := len(spooled)
	t.Logf("the child left %d batch(es): %v", k, spooled)

	// The next process (this one) delivers them.
	in := newIngest(t, ingestOpts{})
	logs := &logCapture{}
	defer dumpOnFailure(t, logs, in)
	workload(t)
	begin := time.Now()
	p := startProfiler(t, deliveryConfig(in, service, spool, logs))
	fromChild := func() []exchange {
		var out []exchange
		for _, e := range in.distinctAccepted() {
			if e.Req.GetSource().GetPid() == childPID {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(t, "the child's batches at the receiver", func() bool { return len(fromChild()) >= k })
	waitFor(t, "a batch of this process", func() bool {
		return len(in.distinctAccepted()) > k
	})
	timedStop(t, p)
	end := time.Now()
	in.settle(t)
	s := p.Stats()
	t.Logf("stats: %+v", s)

	child := fromChild()
	if len(child) == 0 {
		t.Fatal("none of the child's batches arrived")
	}
	childInstance := child[0].Req.GetSource().GetInstanceId()
	var own []exchange
	for _, e := range in.distinctAccepted() {
		if e.Req.GetSource().GetPid() == int64(os.Getpid()) {
			own = append(own, e)
		}
	}
	if len(own) == 0 {
		t.Fatal("none of this process's batches arrived")
	}
	ownInstance := own[0].Req.GetSource().GetInstanceId()
	if childInstance == ownInstance {
		t.Errorf("the child and this process share instance_id %s", ownInstance)
	}
	accepted := in.acceptedUploads()
	checkSequences(t, accepted, childInstance, k)
	checkSequences(t, accepted, ownInstance, int(s.BatchesQueued))
	ids := map[string]bool{}
	for _, e := range child {
		ids[e.Req.GetBatchId()] = true
		checkHeaders(t, e)
		checkProfiles(t, e, childStart, killed)
		if src := e.Req.GetSource(); src.GetInstanceId() != childInstance || src.GetService() != service {
			t.Errorf("child batch %v: source %v", e, src)
		}
	}
	for _, id := range spooled {
		if !ids[id] {
			t.Errorf("the child's spooled batch %s never arrived", id)
		}
	}
	for _, e := range own {
		checkProfiles(t, e, begin, end)
	}
	// Oldest first: the dead process's batches went before any of ours.
	all := in.done()
	lastChild, firstOwn := -1, len(all)
	for i, e := range all {
		if e.Req == nil {
			continue
		}
		if e.Req.GetSource().GetPid() == childPID && e.accepted() {
			lastChild = i
		}
		if e.Req.GetSource().GetPid() == int64(os.Getpid()) && i < firstOwn {
			firstOwn = i
		}
	}
	if lastChild > firstOwn {
		t.Errorf("request %d (this process's first) went before request %d (the child's last): want the older batches first",
			firstOwn+1, lastChild+1)
	}
	if s.BatchesAdopted < uint64(k) {
		t.Errorf("BatchesAdopted = %d, want >= %d (the child's spooled batches)", s.BatchesAdopted, k)
	}
	if want := uint64(k) + s.BatchesQueued; s.BatchesSent != want {
		t.Errorf("BatchesSent = %d, want %d adopted + %d own = %d", s.BatchesSent, k, s.BatchesQueued, want)
	}
	if s.QueuedBatches != 0 {
		t.Errorf("QueuedBatches = %d after Stop, want 0", s.QueuedBatches)
	}
	noUploadDrops(t, s)
	if left := spoolBatches(t, spool); len(left) != 0 {
		t.Errorf("%d batch file(s) left in the spool: %v", len(left), left)
	}
	if len(logs.find(slog.LevelInfo, "earlier process")) == 0 {
		t.Error("no Info record says batches of an earlier process were found")
	}
}

// crashChild runs the agent against a closed port until it is killed.
func crashChild(t *testing.T) {
	workload(t)
	cfg := pprofio.Config{
		ServiceName: "e2e-crash",
		Tags:        map[string]string{"env": "e2e", "suite": "delivery"},
		IngestURL:   os.Getenv(envURL),
		APIKey:      testAPIKey,
		SpoolDir:    os.Getenv(envSpool),
		SampleRate:  time.Second,
		CPUDuration: 250 * time.Millisecond,
		StartJitter: -1,
	}
	p, err := pprofio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// No Stop: the parent kills this process.
	time.Sleep(10 * time.Minute) // far past the parent's waitGuard
	t.Fatalf("not killed; stats %+v", p.Stats())
}

// TestDeliveryStopTimeout: with the ingest service unreachable in three
// ways, Stop still returns within StopTimeout (plus slack for the final
// cycle), and what was not delivered stays in SpoolDir; after a hang, a
// later agent with that SpoolDir delivers it.
func TestDeliveryStopTimeout(t *testing.T) {
	isolateEnv(t)
	// The connect and request timeouts are an hour, so only StopTimeout can
	// end Stop; the bound checked is a minute past it (the final cycle is
	// collected first), which a busy machine does not reach and a Stop that
	// waited for the request could not meet.
	const (
		stopTimeout = time.Second
		slack       = time.Minute
	)
	// run starts an agent, waits for cond, stops it and checks the bound
	// and the spool; it returns the spooled batch_ids.
	run := func(t *testing.T, cfg pprofio.Config, logs *logCapture, what string, cond func(*pprofio.Profiler) bool) []string {
		t.Helper()
		cfg.StopTimeout = stopTimeout
		cfg.ConnectTimeout, cfg.RequestTimeout = time.Hour, time.Hour
		p := startProfiler(t, cfg)
		waitFor(t, what, func() bool { return cond(p) })
		d := timedStop(t, p)
		s := p.Stats()
		t.Logf("Stop took %v; stats %+v", d, s)
		if d > stopTimeout+slack {
			t.Errorf("Stop took %v, want within StopTimeout %v (+%v)", d, stopTimeout, slack)
		}
		ids := spoolBatches(t, cfg.SpoolDir)
		if len(ids) == 0 {
			t.Errorf("no batch file in SpoolDir after Stop: the undelivered batches are lost")
		}
		if s.BatchesSent != 0 || s.QueuedBatches != int64(len(ids)) || s.QueuedBatches != int64(s.BatchesQueued) {
			t.Errorf("Stats: BatchesSent %d, QueuedBatches %d, BatchesQueued %d, %d spool files: want nothing sent, everything queued on disk",
				s.BatchesSent, s.QueuedBatches, s.BatchesQueued, len(ids))
		}
		checkNoKeyInLogs(t, logs)
		return ids
	}

	t.Run("Hang", func(t *testing.T) {
		in := newIngest(t, ingestOpts{Script: strings.TrimSuffix(strings.Repeat("hang,", 50), ",")})
		logs := &logCapture{}
		defer dumpOnFailure(t, logs, in)
		spool := t.TempDir()
		ids := run(t, deliveryConfig(in, "e2e-stop-hang", spool, logs), logs, "an upload in flight",
			func(*pprofio.Profiler) bool { return len(in.all()) >= 1 })
		in.settle(t) // the agent went away: the hanging handler returned
		hung := in.all()[0]
		if hung.Status != 0 || hung.Req == nil {
			t.Fatalf("the first request: %v, want the hang (no answer) of a decodable batch", hung)
		}
		found := false
		for _, id := range ids {
			found = found || id == hung.Req.GetBatchId()
		}
		if !found {
			t.Errorf("the batch cut short (%s) is not in the spool %v", hung.Req.GetBatchId(), ids)
		}

		// A later agent with the same SpoolDir sends them.
		in2 := newIngest(t, ingestOpts{})
		logs2 := &logCapture{}
		defer dumpOnFailure(t, logs2, in2)
		cfg2 := deliveryConfig(in2, "e2e-stop-hang", spool, logs2)
		cfg2.SampleRate = time.Minute // no cycle of its own during the test
		cfg2.Profiles = []pprofio.ProfileType{pprofio.ProfileHeap}
		p2 := startProfiler(t, cfg2)
		waitFor(t, "the spooled batches delivered", func() bool { return len(in2.distinctAccepted()) >= len(ids) })
		s2 := p2.Stats()
		timedStop(t, p2)
		in2.settle(t)
		if s2.BatchesAdopted != uint64(len(ids)) {
			t.Errorf("the later agent adopted %d batches, want %d", s2.BatchesAdopted, len(ids))
		}
		got := in2.distinctAccepted()
		for i, id := range ids {
			if i >= len(got) || got[i].Req.GetBatchId() != id {
				t.Errorf("delivery %d: want spooled batch %s (in the spool's order)", i+1, id)
			}
		}
		if len(got) > 0 && hung.Req.GetBatchId() != got[0].Req.GetBatchId() {
			t.Errorf("the first delivery was %s, want the batch cut short, %s", got[0].Req.GetBatchId(), hung.Req.GetBatchId())
		}
	})

	t.Run("Refused", func(t *testing.T) {
		logs := &logCapture{}
		defer dumpOnFailure(t, logs, nil)
		cfg := deliveryConfig(&ingest{URL: closedPortURL(t)}, "e2e-stop-refused", t.TempDir(), logs)
		run(t, cfg, logs, "a refused upload", func(p *pprofio.Profiler) bool { return p.Stats().BatchesRetried >= 1 })
	})

	// A TCP listener that accepts and reads but never answers: the TLS
	// handshake never completes.
	t.Run("Blackhole", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var accepted atomic.Int32
		var wg sync.WaitGroup
		var mu sync.Mutex
		var conns []net.Conn
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				accepted.Add(1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					io.Copy(io.Discard, c)
				}()
			}
		}()
		t.Cleanup(func() {
			l.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
		logs := &logCapture{}
		defer dumpOnFailure(t, logs, nil)
		cfg := deliveryConfig(&ingest{URL: "https://" + l.Addr().String()}, "e2e-stop-blackhole", t.TempDir(), logs)
		run(t, cfg, logs, "a connection to the black hole", func(*pprofio.Profiler) bool { return accepted.Load() >= 1 })
	})
}

// TestDeliveryHostSurvives: the agent uploads large bodies to a server that
// resets every connection while the program profiles its own CPU the whole
// time (the agent takes heap profiles only) and writes to pipes whose
// reader is gone. The program must see EPIPE from its writes and nothing
// else, and must not be killed by SIGPIPE: it runs in a child process, so
// a signal death is seen from here.
func TestDeliveryHostSurvives(t *testing.T) {
	if os.Getenv(childEnv) == "delivery-survive" {
		surviveChild(t)
		return
	}
	isolateEnv(t)
	in := newIngest(t, ingestOpts{
		Script:      strings.TrimSuffix(strings.Repeat("reset,", 400), ","),
		SmallRcvBuf: true,
	})
	defer dumpOnFailure(t, nil, in)
	cmd := childCmd("TestDeliveryHostSurvives", "delivery-survive",
		envURL+"="+in.URL, envCA+"="+in.CAFile, envSpool+"="+t.TempDir())
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*waitGuard, func() { cmd.Process.Kill() }) // a hang guard
	err := cmd.Wait()
	timer.Stop()
	t.Logf("child (%s):\n%s", exitDescription(cmd.ProcessState), out.String())
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("the program was killed by signal %v while the agent uploaded", ws.Signal())
	}
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestDeliveryHostSurvives") {
		t.Fatal("the child did not run the test")
	}
	in.settle(t)
	// The resets hit uploads still being sent: large bodies, of which the
	// server had read a small part.
	resets, midBody := 0, 0
	for _, e := range in.all() {
		if e.Status == 0 && !e.Outage {
			resets++
			if e.ContentLength >= 64<<10 && int64(len(e.Wire)) < e.ContentLength/4 {
				midBody++
			}
		}
	}
	t.Logf("%d resets, %d of them with most of a body of 64 KiB or more unsent", resets, midBody)
	if resets < 2 || midBody < 2 {
		t.Errorf("%d resets, %d mid-body: want several resets of large uploads still being sent", resets, midBody)
	}
}

// surviveKeep keeps surviveChild's sampled allocations alive.
var surviveKeep [][]byte

// surviveChild is the program of TestDeliveryHostSurvives.
func surviveChild(t *testing.T) {
	// A large heap profile: every allocation sampled, 32768 stacks, all
	// kept alive (so in-use values stay non-zero in every cycle's profile).
	runtime.MemProfileRate = 1
	const depth = 15
	for path := uint32(0); path < 1<<depth; path++ {
		stackA(depth, path)
		surviveKeep = append(surviveKeep, stackSink)
	}
	runtime.GC()

	// The program's own CPU profile, for the whole run.
	var own bytes.Buffer
	if err := pprof.StartCPUProfile(&own); err != nil {
		t.Fatalf("StartCPUProfile: %v", err)
	}
	ownStopped := false
	defer func() {
		if !ownStopped {
			pprof.StopCPUProfile()
		}
	}()
	stopSpin := spin(t, ownHot)

	logs := &logCapture{}
	p := startProfiler(t, pprofio.Config{
		ServiceName: "e2e-survive",
		IngestURL:   os.Getenv(envURL),
		CAFile:      os.Getenv(envCA),
		APIKey:      testAPIKey,
		SpoolDir:    os.Getenv(envSpool),
		Profiles:    []pprofio.ProfileType{pprofio.ProfileHeap},
		SampleRate:  time.Second,
		StartJitter: -1,
		StopTimeout: time.Second,
		Logger:      slog.New(logs),
	})

	// The program's own I/O: writes to a pipe with no reader, sleeps, and
	// reads of a file, in a loop. Only EPIPE may come back.
	dataFile := filepath.Join(t.TempDir(), "data")
	content := bytes.Repeat([]byte("pprofio"), 10000)
	if err := os.WriteFile(dataFile, content, 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		stop          atomic.Bool
		epipes, loops atomic.Int64
		unexpectedMu  sync.Mutex
		unexpected    []error
		ioDone        = make(chan struct{})
	)
	note := func(err error) {
		unexpectedMu.Lock()
		if len(unexpected) < 20 {
			unexpected = append(unexpected, err)
		}
		unexpectedMu.Unlock()
	}
	go func() {
		defer close(ioDone)
		r, w, err := os.Pipe()
		if err != nil {
			note(err)
			return
		}
		r.Close()
		defer w.Close()
		chunk := make([]byte, 4096)
		for !stop.Load() {
			if _, err := w.Write(chunk); errors.Is(err, syscall.EPIPE) {
				epipes.Add(1)
			} else {
				note(fmt.Errorf("write to a pipe without reader: %v, want EPIPE", err))
			}
			time.Sleep(2 * time.Millisecond)
			if got, err := os.ReadFile(dataFile); err != nil || !bytes.Equal(got, content) {
				note(fmt.Errorf("read %s: %d bytes, %v", dataFile, len(got), err))
			}
			loops.Add(1)
		}
	}()

	waitFor(t, "four cycles with failed uploads", func() bool {
		s := p.Stats()
		return s.Cycles >= 4 && s.BatchesRetried >= 2
	})
	stop.Store(true)
	<-ioDone
	stopSpin()
	pprof.StopCPUProfile()
	ownStopped = true
	d := timedStop(t, p)
	s := p.Stats()
	t.Logf("Stop took %v; stats %+v", d, s)
	t.Logf("own I/O: %d loops, %d EPIPE", loops.Load(), epipes.Load())
	for _, r := range logs.all() {
		if r.Level >= slog.LevelWarn {
			t.Logf("log: %v %s", r.Level, r.Msg)
		}
	}

	for _, err := range unexpected {
		t.Errorf("the program's own I/O: %v", err)
	}
	if epipes.Load() == 0 || loops.Load() == 0 {
		t.Errorf("%d loops, %d EPIPE: the program's I/O did not run", loops.Load(), epipes.Load())
	}
	// The program's profile is whole and its own.
	prof, err := profile.Parse(bytes.NewReader(own.Bytes()))
	if err != nil {
		t.Fatalf("the program's CPU profile: %v", err)
	}
	funcs, total := cpuSamples(t, prof)
	if oh := findFunc(funcs, "ownHot"); oh == nil || oh.Cum == 0 {
		t.Errorf("the program's CPU profile (%d samples) lacks ownHot; top:%s", total, top(funcs, 8, cum))
	}
	if s.BatchesRetried < 2 || s.BatchesSent != 0 {
		t.Errorf("BatchesRetried %d, BatchesSent %d: want failed attempts and nothing delivered", s.BatchesRetried, s.BatchesSent)
	}
	if s.ProfilesSkipped != 0 || s.ProfilesCollected < 4 {
		t.Errorf("ProfilesSkipped %d, ProfilesCollected %d: want every heap profile taken", s.ProfilesSkipped, s.ProfilesCollected)
	}
	if s.BytesSent == 0 {
		t.Error("BytesSent = 0: the uploads never got going")
	}
}

// TestDeliveryAndLocalFiles: with both IngestURL and OutputDir, every
// profile is written locally and uploaded: the same windows, the same
// counts, the same profile bytes.
func TestDeliveryAndLocalFiles(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{})
	logs := &logCapture{}
	defer dumpOnFailure(t, logs, in)
	workload(t)
	const service = "e2e-both"
	out := t.TempDir()
	cfg := deliveryConfig(in, service, t.TempDir(), logs)
	cfg.OutputDir = out
	p := startProfiler(t, cfg)
	waitFor(t, "three batches", func() bool { return len(in.distinctAccepted()) >= 3 })
	timedStop(t, p)
	in.settle(t)
	s := p.Stats()
	t.Logf("stats: %+v", s)

	// type/start/end (ms, as in file names) -> raw profile
	type key struct {
		typ        string
		start, end string
	}
	local := map[key][]byte{}
	for _, typ := range []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap} {
		for _, f := range listProfiles(t, out, service, typ) {
			local[key{string(typ), f.Start.Format(nameTimeLayout), f.End.Format(nameTimeLayout)}] = gunzipFile(t, f.Path)
		}
	}
	uploaded := map[key][]byte{}
	batches := in.distinctAccepted()
	for _, e := range batches {
		for _, pr := range e.Req.GetProfiles() {
			typ := map[ingestpb.ProfileType]string{ingestpb.ProfileType_PROFILE_TYPE_CPU: "cpu",
				ingestpb.ProfileType_PROFILE_TYPE_HEAP: "heap"}[pr.GetType()]
			k := key{typ, time.Unix(0, pr.GetStartUnixNano()).UTC().Format(nameTimeLayout),
				time.Unix(0, pr.GetEndUnixNano()).UTC().Format(nameTimeLayout)}
			if _, dup := uploaded[k]; dup {
				t.Errorf("two uploaded %s profiles for the window %s_%s", k.typ, k.start, k.end)
			}
			uploaded[k] = pr.GetPprof()
			if pr.GetDelta() {
				t.Logf("uploaded %s %s_%s is a delta profile", k.typ, k.start, k.end)
			}
		}
	}
	if len(local) != len(uploaded) || uint64(len(local)) != 2*s.Cycles || s.ProfilesWritten != 2*s.Cycles {
		t.Errorf("%d local files, %d uploaded profiles, ProfilesWritten %d, Cycles %d: want 2 a cycle in each output",
			len(local), len(uploaded), s.ProfilesWritten, s.Cycles)
	}
	for k, raw := range local {
		up, ok := uploaded[k]
		switch {
		case !ok:
			t.Errorf("local %s profile %s_%s was not uploaded", k.typ, k.start, k.end)
		case !bytes.Equal(raw, up):
			t.Errorf("local %s profile %s_%s (%d bytes) differs from the uploaded one (%d bytes)", k.typ, k.start, k.end,
				len(raw), len(up))
		}
	}
	for k := range uploaded {
		if _, ok := local[k]; !ok {
			t.Errorf("uploaded %s profile %s_%s has no local file", k.typ, k.start, k.end)
		}
	}
	if s.BatchesSent != uint64(len(batches)) || s.BatchesSent != s.Cycles || s.QueuedBatches != 0 {
		t.Errorf("BatchesSent %d, QueuedBatches %d, Cycles %d; the receiver has %d batches",
			s.BatchesSent, s.QueuedBatches, s.Cycles, len(batches))
	}
	noUploadDrops(t, s)
}

func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}

// TestDeliveryRejectedBatch: the ingest service answers 400 to the first
// batch. It is dropped (not retried), counted, and logged once with the
// server's reason; the next batch carries a data_dropped event saying what
// was lost; later batches go through.
func TestDeliveryRejectedBatch(t *testing.T) {
	isolateEnv(t)
	in := newIngest(t, ingestOpts{Script: "400"})
	logs := &logCapture{}
	defer dumpOnFailure(t, logs, in)
	workload(t)
	p := startProfiler(t, deliveryConfig(in, "e2e-rejected", t.TempDir(), logs))
	waitFor(t, "two batches after the rejected one", func() bool { return len(in.distinctAccepted()) >= 2 })
	timedStop(t, p)
	in.settle(t)
	s := p.Stats()
	t.Logf("stats: %+v", s)

	exs := in.done()
	first := exs[0]
	if first.Status != http.StatusBadRequest || first.Req == nil || first.Req.GetSequence() != 1 {
		t.Fatalf("the first request: %v, want batch 1 answered 400", first)
	}
	for _, e := range exs[1:] {
		checkHeaders(t, e)
		if e.Req == nil || e.Req.GetSequence() == 1 || e.Req.GetBatchId() == first.Req.GetBatchId() {
			t.Errorf("request %v: want the rejected batch never sent again", e)
		}
		if !e.accepted() {
			t.Errorf("request %v: want accepted", e)
		}
	}
	// Batches 2..N arrived, in order.
	accepted := in.distinctAccepted()
	for i, e := range accepted {
		if e.Req.GetSequence() != uint64(i+2) {
			t.Errorf("accepted batch %d has sequence %d, want %d", i+1, e.Req.GetSequence(), i+2)
		}
	}
	n := s.BatchesQueued
	if s.BatchesDroppedRejected != 1 || s.ProfilesDroppedUpload != 2 || s.BatchesSent != n-1 ||
		uint64(len(accepted)) != n-1 || s.BatchesRetried != 0 || s.QueuedBatches != 0 {
		t.Errorf("Stats: DroppedRejected %d, ProfilesDroppedUpload %d, BatchesSent %d, BatchesQueued %d, Retried %d, Queued %d; receiver accepted %d: want 1, 2, N-1, N, 0, 0, N-1",
			s.BatchesDroppedRejected, s.ProfilesDroppedUpload, s.BatchesSent, n, s.BatchesRetried, s.QueuedBatches, len(accepted))
	}
	// The next batch tells the loss; no other batch repeats it.
	var drops []string
	for _, e := range accepted {
		for _, ev := range e.Req.GetEvents() {
			if ev.GetKind() != "data_dropped" {
				continue
			}
			drops = append(drops, fmt.Sprintf("batch %d: %q %v", e.Req.GetSequence(), ev.GetMessage(), ev.GetAttributes()))
			if e.Req.GetSequence() != 2 {
				t.Errorf("batch %d carries a data_dropped event, want it in batch 2 only", e.Req.GetSequence())
				continue
			}
			a := ev.GetAttributes()
			want := map[string]string{"reason": "rejected", "batches": "1", "profiles": "2",
				"bytes": strconv.Itoa(len(first.Wire))}
			for k, v := range want {
				if a[k] != v {
					t.Errorf("data_dropped attribute %s = %q, want %q (all: %v)", k, a[k], v, a)
				}
			}
			if ts := ev.GetTimeUnixNano(); ts < first.At.Add(-time.Second).UnixNano() || ts > time.Now().UnixNano() {
				t.Errorf("data_dropped time %v, the rejection was at %v", time.Unix(0, ts), first.At)
			}
		}
	}
	t.Logf("data_dropped events: %v", drops)
	if len(drops) != 1 {
		t.Errorf("%d data_dropped events, want 1 (in batch 2)", len(drops))
	}
	// Logged once, at Error level, with the server's reason.
	errs := logs.find(slog.LevelError, "400")
	if len(errs) != 1 {
		t.Errorf("%d Error records about the 400, want 1", len(errs))
	} else if !strings.Contains(errs[0].Msg, "scripted 400") {
		t.Errorf("the Error record %q does not carry the server's answer (\"scripted 400 ...\")", errs[0].Msg)
	}
	checkNoKeyInLogs(t, logs)
}

// BenchmarkDeliveryCycle: one op is one cycle of an agent (SampleRate 1 s)
// delivering to the in-process receiver while a small CPU and allocation
// workload runs. Run with
//
//	go test -run '^$' -bench DeliveryCycle -benchtime 5x ./e2e/
//
// ns/op is the cycle (about 1 s); the metrics are the cost:
// wire-B/cycle (gzipped request body, Stats.BytesSent per batch),
// raw-B/cycle (the body once gunzipped, as the receiver saw it),
// upload-cpu-us/batch (the upload thread's CPU per batch) and
// output-cpu-us/cycle (encoding, gzipping, spooling per cycle).
func BenchmarkDeliveryCycle(b *testing.B) {
	isolateEnv(b)
	in := newIngest(b, ingestOpts{})
	workload(b)
	logs := &logCapture{}
	p, err := pprofio.New(deliveryConfig(in, "e2e-bench", b.TempDir(), logs))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop() })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		waitForTB(b, "a batch delivered", func() bool { return p.Stats().BatchesSent >= uint64(i+1) })
	}
	b.StopTimer()
	s := p.Stats()
	if err := p.Stop(); err != nil {
		b.Errorf("Stop: %v", err)
	}
	in.settle(b)
	batches := in.distinctAccepted()
	if uint64(len(batches)) < s.BatchesSent || s.BatchesSent == 0 || s.Cycles == 0 {
		b.Fatalf("the receiver has %d batches, Stats %+v", len(batches), s)
	}
	var raw int
	for _, e := range batches[:s.BatchesSent] {
		raw += len(e.Body)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	wire := float64(s.BytesSent) / float64(s.BatchesSent)
	rawPer := float64(raw) / float64(s.BatchesSent)
	upload := us(s.CPUUpload) / float64(s.BatchesSent)
	output := us(s.CPUOutput) / float64(s.Cycles)
	b.ReportMetric(wire, "wire-B/cycle")
	b.ReportMetric(rawPer, "raw-B/cycle")
	b.ReportMetric(upload, "upload-cpu-us/batch")
	b.ReportMetric(output, "output-cpu-us/cycle")
	b.Logf("N=%d: %d batches, %d cycles: wire %.0f B/cycle, raw %.0f B/cycle, upload CPU %.0f us/batch, output CPU %.0f us/cycle (retried %d)",
		b.N, s.BatchesSent, s.Cycles, wire, rawPer, upload, output, s.BatchesRetried)
}
