package main

// The paired span measurement, worker side. Two processes' CPU times
// differ by a percent or more on a shared machine, ten times the cost of a
// span around each request; so one process measures both: the reference
// service with pprofio at its product defaults runs many short blocks of
// requests, a span around every request in one block of each pair and
// none in the other (both blocks of a pair send the same orders; adjacent
// blocks share the machine's load; the order within pairs alternates so
// that a drift favours neither), and reads its own CPU clock around each
// block. The garbage collector is off during the blocks and runs between
// them (runtime.GC) as often as it would by itself, outside the measured
// time: a collection's CPU is far larger than a block's differences and
// would land in one block or another by chance. Its CPU per allocated byte
// is measured apart, to charge a span's bytes with it. The worker also
// times start+end of the same span in a loop on one thread's CPU clock,
// for the attribution that pairedreport.go sets beside the direct figure.

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
	"unsafe"

	"github.com/pprofio/pprofio"
)

// pairedBlock is one block of requests.
type pairedBlock struct {
	Spans    bool   `json:"spans"`
	Requests int    `json:"requests"`
	CPU      int64  `json:"cpu_ns"`  // the process's CPU clock over the block
	Wall     int64  `json:"wall_ns"` // its wall clock
	Allocs   uint64 `json:"alloc_bytes"`
}

// spanLoop is the cost of one span start+end measured in the worker: the
// handler's StartSpan on a request's context and End, in a loop on one
// thread.
type spanLoop struct {
	N           int     `json:"n"`
	ThreadCPU   float64 `json:"thread_cpu_ns"` // per span
	AllocBytes  float64 `json:"alloc_bytes"`   // per span
	AllocObject float64 `json:"alloc_objects"` // per span
}

// pairedResult is the paired worker's one line of output.
type pairedResult struct {
	Blocks []pairedBlock `json:"blocks"`
	Loop   spanLoop      `json:"span_loop"`         // StartSpan and End
	Req    spanLoop      `json:"span_request_loop"` // and r.WithContext, as the handler does
	// The collections between blocks: their process CPU, how many, and
	// the bytes the blocks allocated, for the GC cost of a span's bytes.
	// Null: a calibration run, no spans in either block of a pair (the
	// blocks keep their places): its difference must be 0 within its
	// interval.
	Null bool `json:"null,omitempty"`
	// Floor: the blocks "with spans" carried a context value into the
	// request (context.WithValue, r.WithContext) instead of a span, and
	// the loops measured that: the least a span middleware costs.
	Floor bool `json:"floor,omitempty"`
	// InRequest: the span's context went into the request (r.WithContext,
	// as a middleware does) rather than down as an argument.
	InRequest bool           `json:"in_request,omitempty"`
	GCCPU     float64        `json:"gc_cpu_s"`
	GCs       int            `json:"gcs"`
	Allocs    uint64         `json:"alloc_bytes"`
	Pprofio   *pprofio.Stats `json:"pprofio,omitempty"`
}

// cpuClock reads a CPU clock (CLOCK_PROCESS_CPUTIME_ID: all the process's
// threads, the C core's included; CLOCK_THREAD_CPUTIME_ID: this thread).
func cpuClock(id uintptr) int64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

const (
	clockProcessCPU = 2
	clockThreadCPU  = 3
)

// loopReq keeps what the span loop makes, so that it is made.
var (
	loopReq *http.Request
	loopCtx context.Context
)

// pairedOn says whether block i has spans. Blocks go in units of four,
// on, off, off, on, then off, on, on, off: each place in a unit (how long
// after a collection) holds as many blocks with spans as without.
func pairedOn(i int) bool { return (i%4 == 0 || i%4 == 3) != (i/4%2 == 1) }

// runPaired runs pairs pairs of blocks of block requests each.
func runPaired(f workerFlags, pairs, block int, null, floor bool) (*pairedResult, error) {
	svc := newService()
	svc.spans, svc.floor, svc.inRequest = true, floor, f.inRequest
	if err := svc.start(); err != nil {
		return nil, err
	}
	defer svc.stop()
	f.variant, f.cadence = varPprofioSpans, cadDefault
	prof, pp, err := startProfiler(f)
	if err != nil {
		return nil, err
	}
	svc.fill()
	client := newClient(f.conc)
	defer client.CloseIdleConnections()
	// Unmeasured blocks with spans: warm caches, connections, the span
	// path and the label cache, and keep a request's context for the loop.
	if _, _, err := driveWith(client, svc.url, 0, 4*block, f.conc); err != nil {
		return nil, err
	}
	res, err := runBlocks(svc, client, f.conc, pairs, block, null)
	if err != nil {
		return nil, err
	}
	res.Null, res.Floor, res.InRequest = null, floor, f.inRequest
	ctx := svc.reqCtx()
	req, err := http.NewRequestWithContext(ctx, "POST", svc.url, nil)
	if err != nil {
		return nil, err
	}
	res.Loop = measureSpanLoop(ctx, nil, 200000, floor)
	res.Req = measureSpanLoop(ctx, req, 200000, floor)
	if err := prof.Stop(); err != nil {
		return nil, err
	}
	s := pp.Stats()
	res.Pprofio = &s
	return res, nil
}

// runBlocks runs the blocks with the collector switched off, collecting
// between blocks (runtime.GC) as often as GOGC=100 would: no block holds
// any garbage collection, so their CPU is the requests' own, and the
// collections' CPU per allocated byte is measured apart.
func runBlocks(svc *service, client *http.Client, conc, pairs, block int, null bool) (*pairedResult, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	res := &pairedResult{}
	collect := func() {
		c0 := cpuClock(clockProcessCPU)
		runtime.GC()
		res.GCCPU += float64(cpuClock(clockProcessCPU)-c0) / 1e9
		res.GCs++
	}
	collect()
	live := readMetrics("/memory/classes/heap/objects:bytes")[0].Value.Uint64()
	since := uint64(0)                     // bytes allocated since the last collection
	for i := range 2 * (pairs + pairs%2) { // whole units of four
		on := pairedOn(i)
		svc.spanOff.Store(!on || null)
		a0 := readMetrics("/gc/heap/allocs:bytes")[0].Value.Uint64()
		t0, c0 := time.Now(), cpuClock(clockProcessCPU)
		// Both blocks of a pair send the same orders.
		_, failed, err := driveWith(client, svc.url, int64(i/2*block), block, conc)
		c1, wall := cpuClock(clockProcessCPU), time.Since(t0)
		if err != nil || failed > 0 {
			return nil, fmt.Errorf("block %d: %d requests failed: %v", i, failed, err)
		}
		a := readMetrics("/gc/heap/allocs:bytes")[0].Value.Uint64() - a0
		res.Blocks = append(res.Blocks, pairedBlock{Spans: on, Requests: block, CPU: c1 - c0, Wall: int64(wall), Allocs: a})
		res.Allocs += a
		if since += a; since >= live && i%4 == 3 {
			collect()
			since = 0
		}
	}
	return res, nil
}

// measureSpanLoop times n span start+end pairs on one thread's CPU clock,
// with r.WithContext in between as the handler does when req is not nil;
// with floor, a context.WithValue instead of the span.
func measureSpanLoop(ctx context.Context, req *http.Request, n int, floor bool) spanLoop {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ms := readMetrics("/gc/heap/allocs:bytes", "/gc/heap/allocs:objects")
	b0, o0 := ms[0].Value.Uint64(), ms[1].Value.Uint64()
	c0 := cpuClock(clockThreadCPU)
	for range n {
		if floor {
			sctx := context.WithValue(ctx, floorKey{}, "order")
			if req != nil {
				loopReq = req.WithContext(sctx)
			} else {
				loopCtx = sctx
			}
			continue
		}
		sctx, span := pprofio.StartSpan(ctx, "order", "route", "/orders")
		if req != nil {
			loopReq = req.WithContext(sctx)
		}
		span.End()
	}
	c1 := cpuClock(clockThreadCPU)
	metrics := readMetrics("/gc/heap/allocs:bytes", "/gc/heap/allocs:objects")
	return spanLoop{N: n, ThreadCPU: float64(c1-c0) / float64(n),
		AllocBytes:  float64(metrics[0].Value.Uint64()-b0) / float64(n),
		AllocObject: float64(metrics[1].Value.Uint64()-o0) / float64(n)}
}
