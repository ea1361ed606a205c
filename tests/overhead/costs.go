package main

// The cost attributed to pprofio, by profile type, against the budgets of
// the metrics matrix: the collector goroutine's CPU per type (its thread's
// CPU clock around each command: runtime/pprof's encoding, the copy into
// C memory), the C core's threads, and, for the CPU profile, the runtime's
// own CPU profiler at the same duty cycle (the runtime-cpu variant). These
// are clocks of the agent's own threads, far more precise than the
// difference of two processes' CPU.

import (
	"fmt"
	"math"
	"time"
)

// costTypes are the profile types in the order of the matrix, with the
// budget of each: its share of one core.
var costTypes = []struct {
	name   string
	budget float64
}{{"cpu", 0.005}, {"heap", 0.003}, {"goroutine", 0.002}, {"mutex", 0.002}, {"block", 0.002}}

// productPeriod is pprofio's default SampleRate, which the budgets are for.
const productPeriod = 60 * time.Second

// collectorCosts is the median, over the runs of variant v at cadence c,
// of the collector's CPU per cycle (per batch sent) for each profile type.
func collectorCosts(runs []*run, v, c string) map[string]float64 {
	by := map[string][]float64{}
	for _, r := range runs {
		s := r.Worker.Pprofio
		if r.Variant != v || r.Cadence != c || s == nil || s.BatchesSent == 0 || r.Worker.Collector == nil {
			continue
		}
		for name, cost := range r.Worker.Collector {
			by[name] = append(by[name], cost.CPU.Seconds()/float64(s.BatchesSent))
		}
	}
	if len(by) == 0 {
		return nil
	}
	out := map[string]float64{}
	for name, xs := range by {
		out[name] = medianOf(xs)
	}
	return out
}

// costRow picks the row the cost table is about: pprofio-all (every type),
// else pprofio; and the runtime-cpu row, if those ran.
func (rep *report) costRows(c string) (agent, floor *row) {
	for i := range rep.Rows[c] {
		r := &rep.Rows[c][i]
		switch {
		case r.Variant == varPprofioAll && r.Collector != nil:
			agent = r
		case r.Variant == varPprofio && r.Collector != nil && agent == nil:
			agent = r
		case r.Variant == varRuntimeCPU:
			floor = r
		}
	}
	return agent, floor
}

// costTable writes the per-type table of cadence c.
func (rep *report) costTable(w func(string, ...any), c string) {
	agent, floor := rep.costRows(c)
	if agent == nil && floor == nil {
		return
	}
	per := period(varPprofio, c)
	share := func(sec float64, over time.Duration) string {
		if math.IsNaN(sec) {
			return "–"
		}
		return fmt.Sprintf("%.3f%%", 100*sec/over.Seconds())
	}
	w("\nCost attributed to the agent, by profile type (%s; per cycle, and as a share of one core over the %s SampleRate and over the product default's 60 s), against the metrics matrix's budgets:\n\n",
		variantName(agent), per)
	w("| profile type | CPU per cycle | share of one core at %s | at 60 s | budget |\n", per)
	w("| --- | --- | --- | --- | --- |\n")
	line := func(label string, sec float64, budget string) {
		w("| %s | %s ms | %s | %s | %s |\n", label, msf(sec), share(sec, per), share(sec, productPeriod), budget)
	}
	var total float64
	for _, t := range costTypes {
		if agent == nil {
			break
		}
		sec, ok := agent.Collector[t.name]
		if !ok {
			continue
		}
		total += sec
		line(t.name+": collector goroutine", sec, fmt.Sprintf("< %.1f%%", 100*t.budget))
	}
	if agent != nil {
		total += agent.CoreTotal
		line("all types: C core threads (scheduler, output with the deltas, upload)", agent.CoreTotal, "–")
		line("**agent's own threads, total**", total, "< 1.4% (the sum)")
	}
	if floor != nil {
		// Its cost grows with the window, which is the same share of the
		// cycle at both cadences: the share is the same at 60 s.
		w("| cpu: the runtime's CPU profiler alone (runtime-cpu: process CPU more than baseline, median [interval]; can be negative, see below) | %s | %s | %s (same duty cycle) | < 0.5%% with the collector's cpu row |\n",
			msec(floor.DCPUCycle), share(floor.DCPUCycle.Med, per), share(floor.DCPUCycle.Med, per))
	}
}

func variantName(r *row) string {
	if r == nil {
		return "no pprofio variant ran"
	}
	return r.Variant
}
