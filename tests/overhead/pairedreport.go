package main

// The paired span measurement, harness side: it runs the paired worker
// (paired.go), and turns its blocks into the extra CPU per request of a
// span around every request, with intervals, next to the cost attributed
// from the worker's span loop.

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
)

// runPairedWorker runs the paired worker and reads its result.
func (h *harness) runPairedWorker() (*pairedResult, error) {
	spool, err := os.MkdirTemp(h.tmp, "spool-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)
	fmt.Fprintf(os.Stderr, "overhead: paired span measurement: %d pairs of blocks of %d requests in one pprofio process\n",
		h.f.spanPairs, h.f.spanBlock)
	args := []string{"-worker", "-pairs", fmt.Sprint(h.f.spanPairs), "-block", fmt.Sprint(h.f.spanBlock),
		"-conc", fmt.Sprint(h.f.conc), "-ingest-url", h.ingest.URL, "-ca-file", h.caFile, "-api-key", apiKey,
		"-spool-dir", spool, "-sink-url", h.sink.URL}
	if h.f.spanNull {
		args = append(args, "-null")
	}
	if h.f.spanFloor {
		args = append(args, "-floor")
	}
	if h.f.spanInReq {
		args = append(args, "-span-in-request")
	}
	stdout, _, _, err := h.execWorker("paired worker", args)
	if err != nil {
		return nil, err
	}
	res := new(pairedResult)
	if err := json.Unmarshal(lastLine(stdout), res); err != nil {
		return nil, fmt.Errorf("paired worker output: %w", err)
	}
	return res, nil
}

// pairedFigures is the analysis of a paired run. The blocks hold no
// garbage collection: their CPU is the requests' own (mutator, runtime,
// the agent); the collector's share is added from its CPU per byte.
type pairedFigures struct {
	Pairs      int
	MutReq     float64  // CPU per request in the blocks without spans, ns (median)
	GCReq      float64  // the collector's CPU per request, ns: bytes per request × GC CPU per byte
	PairDiff   estimate // per pair: block CPU per request with spans / without - 1
	Total      float64  // sum of block CPU with spans / sum without - 1
	TotalLo    float64  // bootstrap 95% interval of Total, resampling pairs
	TotalHi    float64
	BlockNoise float64  // median absolute pair difference: the noise of one pair
	GCPerByte  float64  // collections' CPU per byte the blocks allocated, ns
	GCSpan     float64  // the collector's CPU for one span's bytes, ns
	Service    estimate // extra CPU of the service, collector included: PairDiff turned into it
	Attributed float64  // (span loop CPU + GCSpan) / the service's CPU per request
}

func analysePaired(p *pairedResult) pairedFigures {
	var f pairedFigures
	var diffs, offs, onCPU, offCPU, offAlloc []float64
	for i := 0; i+1 < len(p.Blocks); i += 2 {
		a, b := p.Blocks[i], p.Blocks[i+1]
		if a.Spans == b.Spans {
			continue
		}
		on, off := a, b
		if !a.Spans {
			on, off = b, a
		}
		perOn, perOff := float64(on.CPU)/float64(on.Requests), float64(off.CPU)/float64(off.Requests)
		diffs = append(diffs, perOn/perOff-1)
		offs = append(offs, perOff)
		onCPU, offCPU = append(onCPU, perOn), append(offCPU, perOff)
		offAlloc = append(offAlloc, float64(off.Allocs)/float64(off.Requests))
	}
	f.Pairs = len(diffs)
	if f.Pairs == 0 {
		return f
	}
	f.MutReq = medianOf(offs)
	f.PairDiff = medianCI(diffs, 0.95)
	f.Total, f.TotalLo, f.TotalHi = bootstrapRatio(onCPU, offCPU, 4000)
	abs := make([]float64, len(diffs))
	for i, d := range diffs {
		abs[i] = math.Abs(d)
	}
	f.BlockNoise = medianOf(abs)
	if p.Allocs > 0 {
		f.GCPerByte = p.GCCPU * 1e9 / float64(p.Allocs)
	}
	f.GCReq = medianOf(offAlloc) * f.GCPerByte
	h := p.handlerLoop()
	if !p.Null { // a calibration run made no span bytes
		f.GCSpan = h.AllocBytes * f.GCPerByte
	}
	svc := f.MutReq + f.GCReq
	toService := func(d float64) float64 { return (d*f.MutReq + f.GCSpan) / svc }
	f.Service = f.PairDiff
	f.Service.Med, f.Service.Lo, f.Service.Hi = toService(f.PairDiff.Med), toService(f.PairDiff.Lo), toService(f.PairDiff.Hi)
	f.Attributed = (h.ThreadCPU + f.GCSpan) / svc
	return f
}

// handlerLoop is the loop that does what the handler adds: the span, and
// r.WithContext when the context goes into the request.
func (p *pairedResult) handlerLoop() spanLoop {
	if p.InRequest || p.Floor {
		return p.Req
	}
	return p.Loop
}

// bootstrapRatio is sum(on)/sum(off) - 1 with a percentile bootstrap 95%
// interval, resampling pairs (a fixed seed: the same run gives the same
// interval).
func bootstrapRatio(on, off []float64, n int) (est, lo, hi float64) {
	ratio := func(idx func(int) int) float64 {
		var a, b float64
		for i := range on {
			j := idx(i)
			a, b = a+on[j], b+off[j]
		}
		return a/b - 1
	}
	est = ratio(func(i int) int { return i })
	r := rand.New(rand.NewPCG(1, 2))
	rs := make([]float64, n)
	for k := range rs {
		rs[k] = ratio(func(int) int { return r.IntN(len(on)) })
	}
	sort.Float64s(rs)
	return est, rs[int(0.025*float64(n))], rs[int(0.975*float64(n))-1]
}

// pairedMarkdown is the report's section on the paired measurement.
func pairedMarkdown(p *pairedResult, block int) string {
	f := analysePaired(p)
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("\n## A span around every request, paired in one process\n\n")
	if p.Null {
		w("**Calibration run (`-span-null`): no block had spans;** the blocks marked \"with spans\" ran without them, so every difference below is the method's own and must be 0 within its interval.\n\n")
	}
	if p.Floor {
		w("**Floor run (`-span-floor`): no block had spans;** the blocks marked \"with spans\" carried a context value into the request instead (`r.WithContext(context.WithValue(r.Context(), key, \"order\"))`), and the loops below measured that: the least any span middleware costs, which a span's own cost comes on top of.\n\n")
	}
	if f.Pairs == 0 {
		w("No pairs were measured.\n")
		return b.String()
	}
	form := "`StartSpan(r.Context(), \"order\", \"route\", \"/orders\")`, the span's context handed down to the handler's work as an argument, `End`"
	if p.InRequest || p.Floor {
		form = "`StartSpan(r.Context(), \"order\", \"route\", \"/orders\")`, the span's context put in the request with `r.WithContext` as a middleware does, `End`"
	}
	w("One process of the reference service with pprofio at its product defaults ran %d pairs of blocks of %d requests, "+
		"a span around every request (%s) in one block of each pair "+
		"and none in the other (on, off, off, on, then off, on, on, off; both blocks of a pair send the same orders), and read its own CPU clock "+
		"(`CLOCK_PROCESS_CPUTIME_ID`: every thread, the C core's included) around each block. The garbage collector was off during the blocks "+
		"and ran between them (`runtime.GC()`, %d times, as often as GOGC=100 would), outside their time: its CPU per allocated byte, "+
		"measured around those collections, charges the span's bytes.\n\n", f.Pairs, block, form, p.GCs)
	w("| figure | value |\n| --- | --- |\n")
	w("| CPU per request without spans: in the blocks + the collector's share | %.1f µs + %.1f µs |\n", f.MutReq/1e3, f.GCReq/1e3)
	w("| block CPU per request, with spans over without: median over pairs [95%% interval of the median, order statistics] | %+.3f%% [%+.3f%%, %+.3f%%] (coverage %.1f%%) |\n",
		100*f.PairDiff.Med, 100*f.PairDiff.Lo, 100*f.PairDiff.Hi, 100*f.PairDiff.Cover)
	w("| the same, all blocks with spans over all without [bootstrap 95%% interval, resampling pairs] | %+.3f%% [%+.3f%%, %+.3f%%] |\n",
		100*f.Total, 100*f.TotalLo, 100*f.TotalHi)
	w("| noise of one pair (median of \\|difference\\|) | %.2f%% |\n", 100*f.BlockNoise)
	w("| span start+end in a loop in the same process (thread CPU clock, %d spans from a request's context) | %.0f ns, %.0f B, %.2f allocations |\n",
		p.Loop.N, p.Loop.ThreadCPU, p.Loop.AllocBytes, p.Loop.AllocObject)
	w("| the same with the handler's `r.WithContext` | %.0f ns, %.0f B, %.2f allocations |\n",
		p.Req.ThreadCPU, p.Req.AllocBytes, p.Req.AllocObject)
	w("| the collector's CPU per allocated byte; for the handler's span bytes | %.3f ns; %.0f ns |\n", f.GCPerByte, f.GCSpan)
	w("| **extra CPU of the service with a span around every request (the pairs' median [interval], the collector's share added)** | **%+.3f%% [%+.3f%%, %+.3f%%]** |\n",
		100*f.Service.Med, 100*f.Service.Lo, 100*f.Service.Hi)
	w("| **attributed: (the handler's span CPU in the loop%s + the collector's for its bytes) ÷ CPU per request** | **%.3f%%** |\n", map[bool]string{true: " with `r.WithContext`"}[p.InRequest || p.Floor], 100*f.Attributed)
	verdict := "cannot resolve 0.1%: it holds 0.1%"
	switch {
	case f.Service.Hi < 0.001:
		verdict = "puts the cost under 0.1%"
	case f.Service.Lo > 0.001:
		verdict = "puts the cost above 0.1%"
	}
	w("\nThe direct interval %s. The attribution runs the span with its data in the caches: inside the service a span's data is cold after each request's work, so the attribution is a lower bound and the direct figure is the cost.\n", verdict)
	return b.String()
}
