//go:build cgo

package core

/*
#cgo CFLAGS: -I${SRCDIR}/../../include -D_GNU_SOURCE -std=gnu11 -O2
#cgo LDFLAGS: -ldl -lpthread
#include <stdlib.h>
#include "pprofio.h"
#include "../../csrc/gz.h"

// pprofio_go_free_bytes releases what the gzip helpers return to Go.
static void pprofio_go_free_bytes(pprofio_bytes *b) { pprofio_bytes_free(b); }
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"
	"unsafe"

	// Built so that an edit to the C sources or the header rebuilds this
	// package, and kept so that vendoring keeps them (see csrc/csrc.go).
	_ "github.com/pprofio/pprofio/csrc"
	_ "github.com/pprofio/pprofio/include"
)

// Agent is a handle on a C agent. Its methods are safe for the uses the
// collector makes of them; Free must be the last call.
type Agent struct {
	a   *C.pprofio_agent
	cmd *C.pprofio_command // C memory, reused by Next
}

func cError(code C.int, e *C.pprofio_error) error {
	msg := C.GoString(&e.msg[0])
	if msg == "" {
		msg = C.GoString(C.pprofio_strstatus(code))
	}
	return &Error{Code: int(code), Field: int(e.field), Msg: msg}
}

func statusError(code C.int) error {
	if code == C.PPROFIO_OK {
		return nil
	}
	return &Error{Code: int(code), Msg: C.GoString(C.pprofio_strstatus(code))}
}

// cstrings owns C strings made for one call.
type cstrings []unsafe.Pointer

// str returns s as a C string, or NULL for "".
func (cs *cstrings) str(s string) *C.char {
	if s == "" {
		return nil
	}
	p := C.CString(s)
	*cs = append(*cs, unsafe.Pointer(p))
	return p
}

// array returns a C array of n string pointers.
func (cs *cstrings) array(n int) **C.char {
	p := C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof((*C.char)(nil))))
	*cs = append(*cs, p)
	return (**C.char)(p)
}

func (cs cstrings) free() {
	for _, p := range cs {
		C.free(p)
	}
}

// New validates cfg in C and builds an agent; no thread runs yet.
func New(cfg Config) (*Agent, error) {
	var cs cstrings
	defer func() { cs.free() }() // a closure: cs grows below
	service := cs.str(cfg.Service)
	dir := cs.str(cfg.OutputDir)
	var types C.uint
	for _, t := range cfg.Types {
		types |= 1 << C.uint(t)
	}
	ccfg := C.pprofio_config{
		service_name:     service,
		output_dir:       dir,
		period_ns:        C.int64_t(cfg.Period),
		cpu_duration_ns:  C.int64_t(cfg.CPUDuration),
		start_jitter_ns:  C.int64_t(cfg.StartJitter),
		jitter_seed:      C.uint64_t(cfg.JitterSeed),
		max_buffer_bytes: C.int64_t(cfg.MaxBufferBytes),
		profile_types:    types,
		max_span_bytes:   C.int64_t(cfg.MaxSpanBytes),

		leak_windows:        C.int(cfg.LeakWindows),
		leak_min_growth_pct: C.int(cfg.LeakMinGrowthPct),
		leak_min_growth:     C.int(cfg.LeakMinGrowth),

		ingest_url:         cs.str(cfg.IngestURL),
		api_key:            cs.str(cfg.APIKey),
		ca_file:            cs.str(cfg.CAFile),
		user_agent:         cs.str(cfg.UserAgent),
		connect_timeout_ns: C.int64_t(cfg.ConnectTimeout),
		request_timeout_ns: C.int64_t(cfg.RequestTimeout),
		stop_timeout_ns:    C.int64_t(cfg.StopTimeout),
		spool_dir:          cs.str(cfg.SpoolDir),
		max_spool_bytes:    C.int64_t(cfg.MaxSpoolBytes),

		pyroscope_url:       cs.str(cfg.PyroscopeURL),
		pyroscope_user:      cs.str(cfg.PyroscopeUser),
		pyroscope_password:  cs.str(cfg.PyroscopePassword),
		pyroscope_token:     cs.str(cfg.PyroscopeToken),
		pyroscope_tenant_id: cs.str(cfg.PyroscopeTenantID),
	}
	src := &ccfg.source
	src.hostname = cs.str(cfg.Source.Hostname)
	src.pid = C.int64_t(cfg.Source.PID)
	src.instance_id = cs.str(cfg.Source.InstanceID)
	src.agent_version = cs.str(cfg.Source.AgentVersion)
	src.runtime_version = cs.str(cfg.Source.RuntimeVersion)
	src.os = cs.str(cfg.Source.OS)
	src.arch = cs.str(cfg.Source.Arch)
	if !cfg.Source.ProcessStart.IsZero() {
		src.process_start_ns = C.int64_t(cfg.Source.ProcessStart.UnixNano())
	}
	if n := len(cfg.Source.Tags); n > 0 {
		keys, values := cs.array(n), cs.array(n)
		ks := unsafe.Slice(keys, n)
		vs := unsafe.Slice(values, n)
		i := 0
		for k, v := range cfg.Source.Tags {
			ks[i], vs[i] = C.CString(k), C.CString(v)
			cs = append(cs, unsafe.Pointer(ks[i]), unsafe.Pointer(vs[i]))
			i++
		}
		src.tag_keys, src.tag_values, src.n_tags = keys, values, C.size_t(n)
	}
	var cerr C.pprofio_error
	var a *C.pprofio_agent
	if rc := C.pprofio_agent_new(&ccfg, &a, &cerr); rc != C.PPROFIO_OK {
		return nil, cError(rc, &cerr)
	}
	cmd := (*C.pprofio_command)(C.calloc(1, C.sizeof_pprofio_command))
	if cmd == nil {
		C.pprofio_agent_free(a)
		return nil, errors.New("out of memory")
	}
	return &Agent{a: a, cmd: cmd}, nil
}

// Start starts the core's threads.
func (a *Agent) Start() error {
	var cerr C.pprofio_error
	if rc := C.pprofio_agent_start(a.a, &cerr); rc != C.PPROFIO_OK {
		return cError(rc, &cerr)
	}
	return nil
}

func unixTime(ns C.int64_t) time.Time { return time.Unix(0, int64(ns)) }

// Next blocks until the core has a command. Only the collector calls it.
func (a *Agent) Next() Command {
	C.pprofio_agent_next(a.a, a.cmd)
	c := a.cmd
	cmd := Command{Op: Op(c.op), Cycle: int64(c.cycle), At: unixTime(c.at_ns),
		WindowStart: unixTime(c.window_start_ns)}
	if cmd.Op == OpLog {
		cmd.Level = int(c.level)
		cmd.Message = C.GoString(&c.message[0])
	}
	return cmd
}

// Stop ends the schedule; the collector then gets the final commands.
func (a *Agent) Stop() { C.pprofio_agent_stop(a.a) }

// Close waits until every collected profile is written and joins the
// core's threads. It returns a write error of the final cycle.
func (a *Agent) Close() error {
	var cerr C.pprofio_error
	if rc := C.pprofio_agent_close(a.a, &cerr); rc != C.PPROFIO_OK {
		return cError(rc, &cerr)
	}
	return nil
}

// Free releases the agent. No method may be called after it.
func (a *Agent) Free() {
	C.pprofio_agent_free(a.a)
	C.free(unsafe.Pointer(a.cmd))
	a.a, a.cmd = nil, nil
}

// Skip records a profile the collector could not take.
func (a *Agent) Skip(t Type, cycle int64, reason string) {
	r := C.CString(reason)
	defer C.free(unsafe.Pointer(r))
	C.pprofio_agent_skip(a.a, C.int(t), C.int64_t(cycle), r)
}

// RecordsHeld reports what the collector's record tables hold now, and the most they held.
func (a *Agent) RecordsHeld(bytes, peak int64) {
	C.pprofio_agent_records_held(a.a, C.int64_t(bytes), C.int64_t(peak))
}

// StatField is one field of the C core's pprofio_stats.
type StatField struct {
	Name   string // as declared in pprofio.h, e.g. "profiles_dropped_memory"
	Signed bool   // int64_t (a gauge or a CPU time); else uint64_t (a counter)
	offset uintptr
}

var (
	statsOnce   sync.Once
	statsByName map[string]StatField
	statsList   []StatField
)

func loadStatsFields() {
	var n C.size_t
	f := C.pprofio_stats_fields(&n)
	fs := unsafe.Slice(f, int(n))
	statsByName = make(map[string]StatField, len(fs))
	for _, x := range fs {
		sf := StatField{Name: C.GoString(x.name), Signed: x.is_signed != 0, offset: uintptr(x.offset)}
		statsByName[sf.Name] = sf
		statsList = append(statsList, sf)
	}
}

// StatsFields lists the fields of pprofio_stats, in order, from the table
// the C core derives from its one declaration of them.
func StatsFields() []StatField {
	statsOnce.Do(loadStatsFields)
	return append([]StatField(nil), statsList...)
}

// statsPlan maps each field of a Go stats struct to its C field; built
// once per type.
var statsPlans sync.Map // reflect.Type -> []planField

type planField struct {
	index  int
	offset uintptr
	ok     bool
}

func planFor(t reflect.Type) []planField {
	if p, ok := statsPlans.Load(t); ok {
		return p.([]planField)
	}
	statsOnce.Do(loadStatsFields)
	plan := make([]planField, t.NumField())
	for i := range plan {
		sf, ok := statsByName[CName(t.Field(i))]
		plan[i] = planField{index: i, offset: sf.offset, ok: ok}
	}
	statsPlans.Store(t, plan)
	return plan
}

// ReadStats fills *dst, a struct of uint64, int64, time.Duration and
// bool fields, from the core's counters: each field takes the pprofio_stats
// field named CName(field). Fields without one are left alone (a test
// checks that there are none).
func (a *Agent) ReadStats(dst any) {
	var s C.pprofio_stats
	C.pprofio_agent_stats(a.a, &s)
	v := reflect.ValueOf(dst).Elem()
	base := unsafe.Pointer(&s)
	for _, f := range planFor(v.Type()) {
		if !f.ok {
			continue
		}
		field := v.Field(f.index)
		raw := *(*uint64)(unsafe.Add(base, f.offset))
		switch field.Kind() {
		case reflect.Uint64:
			field.SetUint(raw)
		case reflect.Int64:
			field.SetInt(int64(raw))
		case reflect.Bool:
			field.SetBool(raw != 0)
		}
	}
}

// ProfileWriter streams one gzipped profile into C memory. Write copies;
// C keeps no pointer into Go memory.
type ProfileWriter struct {
	w *C.pprofio_profile_writer
}

// Begin opens a writer for a profile of type t whose window began at start.
// A baseline is the snapshot at a window's start, which the core keeps to
// measure the window's end against and never sends.
func (a *Agent) Begin(t Type, cycle int64, start time.Time, baseline bool) (*ProfileWriter, error) {
	var w *C.pprofio_profile_writer
	flags := C.int(0)
	if baseline {
		flags = C.PPROFIO_PROFILE_BASELINE
	}
	if rc := C.pprofio_profile_begin_ex(a.a, C.int(t), C.int64_t(cycle), C.int64_t(start.UnixNano()), flags, &w); rc != C.PPROFIO_OK {
		return nil, fmt.Errorf("open a %v profile: %w", t, statusError(rc))
	}
	return &ProfileWriter{w: w}, nil
}

// BeginRaw opens a writer for a profile of type t as raw pprof that the
// collector made (Records.WriteTo): the core neither inflates nor
// subtracts it. delta: it is its window's delta (else totals).
func (a *Agent) BeginRaw(t Type, cycle int64, start time.Time, delta bool) (*ProfileWriter, error) {
	var w *C.pprofio_profile_writer
	flags := C.int(C.PPROFIO_PROFILE_RAW)
	if delta {
		flags |= C.PPROFIO_PROFILE_DELTA
	}
	if rc := C.pprofio_profile_begin_ex(a.a, C.int(t), C.int64_t(cycle), C.int64_t(start.UnixNano()),
		flags, &w); rc != C.PPROFIO_OK {
		return nil, fmt.Errorf("open a %v profile: %w", t, statusError(rc))
	}
	return &ProfileWriter{w: w}, nil
}

// Write implements io.Writer.
func (w *ProfileWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if rc := C.pprofio_profile_write(w.w, unsafe.Pointer(&p[0]), C.size_t(len(p))); rc != C.PPROFIO_OK {
		return 0, statusError(rc)
	}
	return len(p), nil
}

// Finish hands the profile to the core (ok) or discards it, and frees the
// writer.
func (w *ProfileWriter) Finish(ok bool, end time.Time) error {
	okc := C.int(0)
	if ok {
		okc = 1
	}
	rc := C.pprofio_profile_finish(w.w, okc, C.int64_t(end.UnixNano()))
	w.w = nil
	return statusError(rc)
}

// Version is the C core's version string, as compiled.
func Version() string { return C.GoString(C.pprofio_version()) }

// StatusText is the C core's description of a status code.
func StatusText(code int) string { return C.GoString(C.pprofio_strstatus(C.int(code))) }

// Gzip compresses b with the core's zlib path (for tests and tools).
func Gzip(b []byte) ([]byte, error) {
	var out C.pprofio_bytes
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	rc := C.pprofio_gzip_bytes(p, C.size_t(len(b)), &out)
	defer C.pprofio_go_free_bytes(&out)
	if rc != C.PPROFIO_OK {
		return nil, statusError(rc)
	}
	return C.GoBytes(unsafe.Pointer(out.p), C.int(out.len)), nil
}

// Gunzip inflates a gzip stream with the core's zlib path.
func Gunzip(b []byte) ([]byte, error) {
	var out C.pprofio_bytes
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	rc := C.pprofio_gunzip_bytes(p, C.size_t(len(b)), &out)
	defer C.pprofio_go_free_bytes(&out)
	if rc != C.PPROFIO_OK {
		return nil, statusError(rc)
	}
	return C.GoBytes(unsafe.Pointer(out.p), C.int(out.len)), nil
}
