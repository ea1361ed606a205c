package viewer

// google/pprof's own web UI (flame graph, graph, top, source, peek) over
// the merge of a selection's profiles, the way `go tool pprof -http` runs
// it: driver.PProf with a Fetcher that hands over the merged profile and
// an HTTPServer hook that captures the UI's handlers instead of listening.

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/driver"
	"github.com/google/pprof/profile"
)

// uiCacheSize is how many merged selections keep their pprof UI.
const uiCacheSize = 8

// pprofUI builds and caches one pprof web UI per selection and type.
type pprofUI struct {
	v *Viewer

	driverMu sync.Mutex // driver.PProf sets package state: one at a time

	mu    sync.Mutex
	cache map[string]*uiEntry
	order []string // least recently used first
}

type uiEntry struct {
	once     sync.Once
	handlers map[string]http.Handler
	err      error
	gen      int64
}

func newPprofUI(v *Viewer) *pprofUI {
	return &pprofUI{v: v, cache: map[string]*uiEntry{}}
}

// encodeSelection turns a selection into one URL path segment.
func encodeSelection(s *selection) string {
	q := url.Values{}
	q.Set("from", strconv.FormatInt(s.From, 10))
	q.Set("to", strconv.FormatInt(s.To, 10))
	if s.Tag[0] != "" {
		q.Set("tag", s.Tag[0]+"="+s.Tag[1])
	}
	if s.Label[0] != "" {
		q.Set("label", s.Label[0]+"="+s.Label[1])
	}
	return base64.RawURLEncoding.EncodeToString([]byte(q.Encode()))
}

// decodeSelection reverses encodeSelection.
func decodeSelection(source, service, seg string) (*selection, error) {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, errors.New("the selection in this link is damaged")
	}
	q, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, errors.New("the selection in this link is damaged")
	}
	s := &selection{Source: source, Service: service}
	if s.From, err = strconv.ParseInt(q.Get("from"), 10, 64); err != nil {
		return nil, errors.New("the selection in this link has no valid from")
	}
	if s.To, err = strconv.ParseInt(q.Get("to"), 10, 64); err != nil {
		return nil, errors.New("the selection in this link has no valid to")
	}
	s.Tag = splitPair(q.Get("tag"))
	s.Label = splitPair(q.Get("label"))
	return s, nil
}

// splitPair splits "k=v" ("" gives an empty pair).
func splitPair(s string) [2]string {
	k, val, _ := strings.Cut(s, "=")
	if k == "" {
		return [2]string{}
	}
	return [2]string{k, val}
}

// pprofLink is the URL of pprof's view (e.g. "flamegraph") of a selection.
func pprofLink(s *selection, typ, view string) string {
	return "/pprof/" + url.PathEscape(s.Source) + "/" + url.PathEscape(s.Service) + "/" + typ + "/" + encodeSelection(s) + "/" + view
}

// serve answers /pprof/{source}/{service}/{type}/{sel}/{view...}.
func (u *pprofUI) serve(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	if _, ok := mainValues[typ]; !ok {
		u.v.problem(w, http.StatusNotFound, "Unknown profile type", fmt.Sprintf("%q is not one of %s.", typ, strings.Join(profileTypes, ", ")))
		return
	}
	s, err := decodeSelection(r.PathValue("source"), r.PathValue("service"), r.PathValue("sel"))
	if err != nil {
		u.v.problem(w, http.StatusBadRequest, "Bad link", err.Error())
		return
	}
	e := u.entry(typ, r.PathValue("sel"), s)
	if e.err != nil {
		u.v.problem(w, http.StatusOK, "Nothing to show", e.err.Error())
		return
	}
	h := e.handlers["/"+r.PathValue("view")]
	if h == nil {
		u.v.problem(w, http.StatusNotFound, "Not found", "pprof has no view named "+strconv.Quote(r.PathValue("view"))+".")
		return
	}
	// pprof's handlers start from one configuration shared by every UI
	// of the process; the sample type must come with each request.
	if q := r.URL.Query(); q.Get("si") == "" {
		q.Set("si", defaultSampleIndex[typ])
		r.URL.RawQuery = q.Encode()
	}
	h.ServeHTTP(w, r)
}

// entry returns the cached UI of a selection, building it on first use
// (and again once the index has grown).
func (u *pprofUI) entry(typ, sel string, s *selection) *uiEntry {
	key := s.Source + "\x00" + s.Service + "\x00" + typ + "\x00" + sel
	gen := u.v.gen.Load()
	u.mu.Lock()
	e := u.cache[key]
	if e == nil || e.gen != gen {
		e = &uiEntry{gen: gen}
		u.cache[key] = e
	}
	u.touch(key)
	u.mu.Unlock()
	e.once.Do(func() {
		p, err := u.v.merge(s, typ)
		if err == nil {
			e.handlers, err = u.build(p, typ)
		}
		e.err = err
	})
	return e
}

// touch marks key most recently used and evicts past uiCacheSize; u.mu is held.
func (u *pprofUI) touch(key string) {
	for i, k := range u.order {
		if k == key {
			u.order = append(u.order[:i], u.order[i+1:]...)
			break
		}
	}
	u.order = append(u.order, key)
	for len(u.order) > uiCacheSize {
		delete(u.cache, u.order[0])
		u.order = u.order[1:]
	}
}

// defaultSampleIndex is the sample type pprof shows first, per type.
var defaultSampleIndex = map[string]string{"heap": "alloc_space", "mutex": "delay", "block": "delay", "cpu": "cpu", "goroutine": "goroutine"}

// build runs pprof's driver on p and returns the web UI's handlers.
func (u *pprofUI) build(p *profile.Profile, typ string) (map[string]http.Handler, error) {
	args := []string{"-http=localhost:1", "-no_browser", "-symbolize=none", "-sample_index=" + defaultSampleIndex[typ], typ}
	var handlers map[string]http.Handler
	ui := &quietUI{v: u.v}
	u.driverMu.Lock()
	err := driver.PProf(&driver.Options{
		Flagset: newFlagset(args),
		Fetch:   fetcher{p},
		UI:      ui,
		HTTPServer: func(a *driver.HTTPServerArgs) error {
			handlers = a.Handlers
			return nil
		},
	})
	u.driverMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("pprof could not open the merged profile: %v %s", err, ui.errs.String())
	}
	return handlers, nil
}

// fetcher hands the driver the merged profile.
type fetcher struct{ p *profile.Profile }

func (f fetcher) Fetch(string, time.Duration, time.Duration) (*profile.Profile, string, error) {
	return f.p.Copy(), "", nil
}

// quietUI is the driver's terminal: nothing to read, messages kept.
type quietUI struct {
	v    *Viewer
	errs strings.Builder
}

func (*quietUI) ReadLine(string) (string, error) { return "", errors.New("no terminal") }
func (*quietUI) Print(...any)                    {}
func (q *quietUI) PrintErr(a ...any) {
	msg := fmt.Sprint(a...)
	q.errs.WriteString(msg)
	q.v.opts.Logger.Printf("viewer: pprof: %s", msg)
}
func (*quietUI) IsTerminal() bool                    { return false }
func (*quietUI) WantBrowser() bool                   { return false }
func (*quietUI) SetAutoComplete(func(string) string) {}

// flagset gives the driver a fixed command line.
type flagset struct {
	*flag.FlagSet
	args []string
}

func newFlagset(args []string) *flagset {
	fs := flag.NewFlagSet("pprof", flag.ContinueOnError)
	fs.SetOutput(discard{})
	return &flagset{FlagSet: fs, args: args}
}

func (f *flagset) StringList(name, def, usage string) *[]*string {
	return &[]*string{f.String(name, def, usage)}
}
func (f *flagset) ExtraUsage() string   { return "" }
func (f *flagset) AddExtraUsage(string) {}
func (f *flagset) Parse(usage func()) []string {
	if err := f.FlagSet.Parse(f.args); err != nil {
		usage()
	}
	return f.FlagSet.Args()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// merge merges the selection's readable profiles of a type (see
// mergeRange), keeping the samples that carry the selection's label.
// Damaged files are skipped (their rows already say why); a selection
// with nothing readable is an error.
func (v *Viewer) merge(s *selection, typ string) (*profile.Profile, error) {
	src, ok := v.sourceOf(s.Source)
	if !ok {
		return nil, fmt.Errorf("there is no source named %q", s.Source)
	}
	ps, stored, err := v.mergeRange(src, s, typ)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no readable %s profile of %s in this range (%d stored, none readable)", typ, s.Service, stored)
	}
	merged, err := profile.Merge(ps)
	if err != nil {
		return nil, fmt.Errorf("the %s profiles of this range cannot be merged: %v", typ, err)
	}
	if s.Tag[0] != "" && len(merged.Sample) == 0 {
		return nil, fmt.Errorf("no %s sample of a cycle tagged %s=%s in this range", typ, s.Tag[0], s.Tag[1])
	}
	if s.Label[0] != "" {
		merged.FilterSamplesByTag(func(smp *profile.Sample) bool { return hasLabel(smp, s.Label) }, nil)
		if len(merged.Sample) == 0 {
			return nil, fmt.Errorf("no %s sample carries the label %s=%s in this range", typ, s.Label[0], s.Label[1])
		}
	}
	return merged, nil
}

func hasLabel(smp *profile.Sample, kv [2]string) bool {
	for _, val := range smp.Label[kv[0]] {
		if val == kv[1] {
			return true
		}
	}
	return false
}
