package viewer

// The routes, the common frame of every page (service header, range
// picker, filters) and the rule that bad input gets a clear page, never
// a stack trace.

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

var pageTmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"time": formatTime,
	"ago": func(ns int64) string {
		if ns == 0 {
			return "never"
		}
		return time.Since(time.Unix(0, ns)).Round(time.Second).String() + " ago"
	},
	"span": func(a, b int64) string { return time.Duration(b - a).Round(time.Second).String() },
	"tabTitle": func(path string) string {
		for _, t := range tabs {
			if t.Path == path {
				return t.Title
			}
		}
		return ""
	},
	"inputTime": func(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05") },
	"pair": func(kv [2]string) string {
		if kv[0] == "" {
			return ""
		}
		return kv[0] + "=" + kv[1]
	},
	"quickRanges": quickRanges,
}).ParseFS(assets, "templates/*.html"))

// tabs are the per-service pages, in menu order.
var tabs = []struct{ Path, Title string }{
	{"", "Overview"}, {"cpu", "CPU"}, {"memory", "Memory"}, {"goroutines", "Goroutines"},
	{"mutex", "Mutex"}, {"block", "Block"}, {"spans", "Spans"}, {"events", "Events"},
}

// pageBuilders fill a service page's sections.
var pageBuilders = map[string]func(*Viewer, *pageData) error{
	"": overviewPage, "cpu": cpuPage, "memory": memoryPage, "goroutines": goroutinesPage,
	"mutex": mutexPage, "block": blockPage, "spans": spansPage, "events": eventsPage,
}

// section is one block of a page: a title, a chart, a table, an
// embedded pprof view and links.
type section struct {
	ID, Title, Note string
	Chart           template.HTML
	Table           *table
	Frame           string
	Links           []link
}

type table struct {
	Head []string
	Rows [][]cell
}

type cell struct {
	Text, Href, Class string
}

type link struct{ Text, Href string }

// pageData is what the page template renders.
type pageData struct {
	Title, Tab, Kind    string
	Sel                 *selection
	First, Last, Cycles int64
	Profiles            int64
	Query               string // the selection as URL parameters
	Axis                template.HTML
	Tags, Labels        [][2]string
	ShowLabels          bool
	Problems            []string
	Message             string
	Sections            []section
	Services            []serviceInfo
	Tabs                []link
	Gen                 int64
	r                   *http.Request
}

func (v *Viewer) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", v.servicesPage)
	mux.HandleFunc("GET /s/{source}/{service}/{$}", v.servicePage)
	mux.HandleFunc("GET /s/{source}/{service}/{page}", v.servicePage)
	mux.HandleFunc("GET /pprof/{source}/{service}/{type}/{sel}/{view...}", v.pprof.serve)
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.FS(static))))
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, v.gen.Load())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v.problem(w, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	})
	v.mux = mux
}

// ServeHTTP serves the UI. A handler that panics gets a plain error page
// (the details go to the log), never a stack trace in the browser.
func (v *Viewer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			v.opts.Logger.Printf("viewer: %s %s: panic: %v\n%s", r.Method, r.URL, p, debug.Stack())
			v.problem(w, http.StatusInternalServerError, "Internal error", fmt.Sprintf("This page could not be built: %v", p))
		}
	}()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	v.mux.ServeHTTP(w, r)
}

// problem renders a page that says what is wrong.
func (v *Viewer) problem(w http.ResponseWriter, status int, title, msg string) {
	v.render(w, status, &pageData{Title: title, Message: msg})
}

func (v *Viewer) render(w http.ResponseWriter, status int, d *pageData) {
	d.Gen = v.gen.Load()
	var b strings.Builder
	if err := pageTmpl.ExecuteTemplate(&b, "page.html", d); err != nil {
		v.opts.Logger.Printf("viewer: rendering %q: %v", d.Title, err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintln(w, "This page could not be rendered; the server log says why.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// servicesPage lists every service of every source.
func (v *Viewer) servicesPage(w http.ResponseWriter, r *http.Request) {
	svcs, err := v.services()
	if err != nil {
		v.problem(w, http.StatusInternalServerError, "Index unavailable", "The index could not be read: "+err.Error())
		return
	}
	d := &pageData{Title: "Services", Services: svcs}
	if len(svcs) == 0 {
		d.Message = "Nothing stored yet. Sources: " + v.describeSources() + "."
	}
	v.render(w, http.StatusOK, d)
}

func (v *Viewer) describeSources() string {
	var parts []string
	for _, s := range v.opts.Sources {
		parts = append(parts, fmt.Sprintf("%s (%s, %s)", s.Name, s.Kind, s.Dir))
	}
	return strings.Join(parts, "; ")
}

// servicePage renders one page of a service over the requested range.
func (v *Viewer) servicePage(w http.ResponseWriter, r *http.Request) {
	source, service, page := r.PathValue("source"), r.PathValue("service"), r.PathValue("page")
	build, ok := pageBuilders[page]
	if !ok {
		v.problem(w, http.StatusNotFound, "Not found", fmt.Sprintf("A service has no page %q; the pages are cpu, memory, goroutines, mutex, block, spans and events.", page))
		return
	}
	src, ok := v.sourceOf(source)
	if !ok {
		v.problem(w, http.StatusNotFound, "Unknown source", fmt.Sprintf("There is no source %q. Sources: %s.", source, v.describeSources()))
		return
	}
	d := &pageData{Title: service, Tab: page, Kind: src.Kind, r: r}
	d.First, d.Last, d.Cycles, d.Profiles = v.bounds(source, service)
	d.Problems = v.problemsOf(source, service)
	if d.Profiles == 0 && d.Cycles == 0 {
		d.Sel = &selection{Source: source, Service: service}
		d.Message = fmt.Sprintf("No cycles are stored for service %q in source %s (yet). This page fills in as profiles arrive.", service, source)
		d.Tabs = v.tabLinks(d)
		v.render(w, http.StatusOK, d)
		return
	}
	sel, err := parseSelection(r, source, service, d.First, d.Last)
	if err != nil {
		v.problem(w, http.StatusBadRequest, "Bad range", err.Error())
		return
	}
	d.Sel, d.Query = sel, selectionQuery(sel)
	d.Tabs = v.tabLinks(d)
	d.Axis = v.timeAxis(d)
	d.Tags, _ = v.tagValues(sel)
	if err := build(v, d); err != nil {
		v.problem(w, http.StatusInternalServerError, "Index unavailable", "The index could not answer this page: "+err.Error())
		return
	}
	v.render(w, http.StatusOK, d)
}

func (v *Viewer) tabLinks(d *pageData) []link {
	var out []link
	base := "/s/" + url.PathEscape(d.Sel.Source) + "/" + url.PathEscape(d.Sel.Service) + "/"
	for _, t := range tabs {
		href := base + t.Path
		if d.Query != "" {
			href += "?" + d.Query
		}
		out = append(out, link{Text: t.Title, Href: href})
	}
	return out
}

// defaultSpan is the range a page shows first: the last day, or less.
const defaultSpan = int64(24 * time.Hour)

// parseSelection reads from, to, tag and label. Times are Unix
// nanoseconds or UTC date-times (2006-01-02T15:04[:05]); the default is
// the service's last day (all of it when it is shorter).
func parseSelection(r *http.Request, source, service string, first, last int64) (*selection, error) {
	s := &selection{Source: source, Service: service, From: max(first, last-defaultSpan), To: last}
	q := r.URL.Query()
	var err error
	if f := q.Get("from"); f != "" {
		if s.From, err = parseTime(f); err != nil {
			return nil, fmt.Errorf("from=%q: %v", f, err)
		}
	}
	if t := q.Get("to"); t != "" {
		if s.To, err = parseTime(t); err != nil {
			return nil, fmt.Errorf("to=%q: %v", t, err)
		}
	}
	if s.To < s.From {
		return nil, errors.New("the range ends before it starts")
	}
	s.Tag, s.Label = splitPair(q.Get("tag")), splitPair(q.Get("label"))
	return s, nil
}

func parseTime(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixNano(), nil
		}
	}
	return 0, errors.New("not a time: give Unix nanoseconds or a UTC date-time such as 2026-11-29T21:41")
}

// selectionQuery is the selection as URL parameters.
func selectionQuery(s *selection) string {
	q := url.Values{}
	q.Set("from", strconv.FormatInt(s.From, 10))
	q.Set("to", strconv.FormatInt(s.To, 10))
	if s.Tag[0] != "" {
		q.Set("tag", s.Tag[0]+"="+s.Tag[1])
	}
	if s.Label[0] != "" {
		q.Set("label", s.Label[0]+"="+s.Label[1])
	}
	return q.Encode()
}

// timeAxis draws the service's whole span with a tick per cycle and the
// selected range highlighted; dragging on it picks a range (static/live.js).
func (v *Viewer) timeAxis(d *pageData) template.HTML {
	rows, err := v.ix.db.Query(`SELECT start_ns FROM cycles WHERE source = ? AND service = ? ORDER BY start_ns`, d.Sel.Source, d.Sel.Service)
	if err != nil {
		return ""
	}
	defer rows.Close()
	f := frame{x0: d.First, x1: d.Last}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="axis" class="axis" viewBox="0 0 %.0f 46" width="%.0f" height="46" data-x0="%d" data-x1="%d" data-padl="%.0f" data-plotw="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		chartW, chartW, f.x0, f.x1, padL, plotW)
	fmt.Fprintf(&b, `<rect x="%.1f" y="4" width="%.1f" height="22" class="sel"/>`, f.x(d.Sel.From), max(2, f.x(d.Sel.To)-f.x(d.Sel.From)))
	n, last := 0, -1.0
	for rows.Next() {
		var t int64
		if rows.Scan(&t) != nil {
			break
		}
		n++
		if x := f.x(t); x-last >= 1 {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="8" y2="22" class="tick"/>`, x, x)
			last = x
		}
	}
	for i := 0; i <= 5; i++ {
		t := f.x0 + (f.x1-f.x0)*int64(i)/5
		fmt.Fprintf(&b, `<text x="%.1f" y="40" class="xlab" text-anchor="%s">%s</text>`, f.x(t), anchor(i), formatTick(t, f.x1-f.x0))
	}
	fmt.Fprintf(&b, `<text x="4" y="20" class="ylab0">%d cycles</text></svg>`, n)
	return template.HTML(b.String())
}

type quickRange struct {
	Name     string
	From, To int64
}

// quickRanges are the last hour, day and week of a service, and all of it.
func quickRanges(first, last int64) []quickRange {
	out := []quickRange{}
	for _, r := range []struct {
		name string
		d    time.Duration
	}{{"last 10 min", 10 * time.Minute}, {"last hour", time.Hour}, {"last day", 24 * time.Hour}, {"last week", 7 * 24 * time.Hour}} {
		if last-first > int64(r.d) {
			out = append(out, quickRange{r.name, last - int64(r.d), last})
		}
	}
	return append(out, quickRange{"all", first, last})
}

// href is a link to another page of the same service, keeping the range.
func (d *pageData) href(page string, extra url.Values) string {
	q, _ := url.ParseQuery(d.Query)
	for k, vs := range extra {
		q[k] = vs
	}
	return "/s/" + url.PathEscape(d.Sel.Source) + "/" + url.PathEscape(d.Sel.Service) + "/" + page + "?" + q.Encode()
}
