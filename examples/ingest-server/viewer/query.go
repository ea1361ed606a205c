package viewer

// The questions the pages ask the index. Every one is bounded by a
// service and a time range and answered by the indexes of the schema.

import (
	"database/sql"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// selection is what a page shows: one service of one source, a time
// range, and optional filters.
type selection struct {
	Source, Service string
	From, To        int64     // Unix ns, inclusive
	Tag             [2]string // source tag key=value the cycles must carry ("" = all)
	Label           [2]string // pprof label key=value the samples must carry ("" = all)
}

// tagClause restricts profiles p to cycles carrying the selection's tag.
func (s *selection) tagClause() (string, []any) {
	if s.Tag[0] == "" {
		return "", nil
	}
	switch s.Tag[0] {
	case "instance":
		return ` AND p.instance = ?`, []any{s.Tag[1]}
	case "host":
		return ` AND EXISTS (SELECT 1 FROM cycles c WHERE c.source = p.source AND c.service = p.service AND c.key = p.cycle_key AND c.hostname = ?)`, []any{s.Tag[1]}
	}
	return ` AND EXISTS (SELECT 1 FROM cycles c WHERE c.source = p.source AND c.service = p.service AND c.key = p.cycle_key AND json_extract(c.tags, ?) = ?)`,
		[]any{`$."` + strings.ReplaceAll(s.Tag[0], `"`, ``) + `"`, s.Tag[1]}
}

// serviceInfo is a line of the services page.
type serviceInfo struct {
	Source, Kind, Service string
	FirstNS, LastNS       int64
	Cycles, Profiles      int64
	LastBatchNS           int64
	Damaged, Problems     int64
	OpenAlerts            int
}

// services lists every service of every source with its totals.
func (v *Viewer) services() ([]serviceInfo, error) {
	rows, err := v.ix.db.Query(`SELECT source, service, min(start_ns), max(end_ns), count(*), sum(status != '') FROM profiles GROUP BY source, service`)
	if err != nil {
		return nil, err
	}
	byKey := map[[2]string]*serviceInfo{}
	var out []*serviceInfo
	for rows.Next() {
		si := &serviceInfo{}
		if err := rows.Scan(&si.Source, &si.Service, &si.FirstNS, &si.LastNS, &si.Profiles, &si.Damaged); err != nil {
			rows.Close()
			return nil, err
		}
		byKey[[2]string{si.Source, si.Service}] = si
		out = append(out, si)
	}
	rows.Close()
	if err := v.addCycleTotals(byKey, &out); err != nil {
		return nil, err
	}
	res := make([]serviceInfo, 0, len(out))
	for _, si := range out {
		si.Kind = v.kindOf(si.Source)
		si.OpenAlerts = len(v.openAlerts(si.Source, si.Service))
		res = append(res, *si)
	}
	sort.Slice(res, func(i, j int) bool {
		if res[i].Source != res[j].Source {
			return res[i].Source < res[j].Source
		}
		return res[i].Service < res[j].Service
	})
	return res, nil
}

// addCycleTotals adds cycle counts, last batches and problem counts.
func (v *Viewer) addCycleTotals(byKey map[[2]string]*serviceInfo, out *[]*serviceInfo) error {
	get := func(src, svc string) *serviceInfo {
		si := byKey[[2]string{src, svc}]
		if si == nil {
			si = &serviceInfo{Source: src, Service: svc}
			byKey[[2]string{src, svc}] = si
			*out = append(*out, si)
		}
		return si
	}
	rows, err := v.ix.db.Query(`SELECT source, service, count(*), max(received_ns), min(start_ns), max(end_ns) FROM cycles GROUP BY source, service`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var src, svc string
		var n, last, first, end int64
		if err := rows.Scan(&src, &svc, &n, &last, &first, &end); err != nil {
			rows.Close()
			return err
		}
		si := get(src, svc)
		si.Cycles, si.LastBatchNS = n, last
		if si.Profiles == 0 {
			si.FirstNS, si.LastNS = first, end
		}
	}
	rows.Close()
	rows, err = v.ix.db.Query(`SELECT source, service, count(*) FROM problems WHERE service != '' GROUP BY source, service`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var src, svc string
		var n int64
		if err := rows.Scan(&src, &svc, &n); err != nil {
			return err
		}
		get(src, svc).Problems = n
	}
	return rows.Err()
}

// kindOf returns the kind of the named source.
func (v *Viewer) kindOf(name string) string {
	for _, s := range v.opts.Sources {
		if s.Name == name {
			return s.Kind
		}
	}
	return ""
}

// sourceOf returns the named source.
func (v *Viewer) sourceOf(name string) (Source, bool) {
	for _, s := range v.opts.Sources {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// bounds returns the time range and cycle count of a service.
func (v *Viewer) bounds(source, service string) (first, last, cycles, profiles int64) {
	var cfirst, clast int64
	_ = v.ix.db.QueryRow(`SELECT coalesce(min(start_ns),0), coalesce(max(end_ns),0), count(*) FROM profiles WHERE source = ? AND service = ?`,
		source, service).Scan(&first, &last, &profiles)
	_ = v.ix.db.QueryRow(`SELECT coalesce(min(start_ns),0), coalesce(max(end_ns),0), count(*) FROM cycles WHERE source = ? AND service = ?`,
		source, service).Scan(&cfirst, &clast, &cycles)
	if cycles > 0 && (profiles == 0 || cfirst < first) {
		first = cfirst
	}
	last = max(last, clast)
	return
}

// point is one profile of a type in a range: its window and totals.
type point struct {
	ID             int64
	StartNS, EndNS int64
	V              [4]int64
	Status, File   string
	SampleTypes    string
}

// points returns the profiles of a type in the selection, oldest first.
func (v *Viewer) points(s *selection, typ string) ([]point, error) {
	return v.queryPoints(s, typ, ` ORDER BY p.start_ns, p.id`)
}

// queryPoints runs the selection's query for a type's profiles with the
// given ORDER BY (and LIMIT) tail and its extra arguments.
func (v *Viewer) queryPoints(s *selection, typ, tail string, tailArgs ...any) ([]point, error) {
	tc, targs := s.tagClause()
	args := append(append([]any{s.Source, s.Service, typ, s.From, s.To}, targs...), tailArgs...)
	rows, err := v.ix.db.Query(`SELECT p.id, p.start_ns, p.end_ns, p.v0, p.v1, p.v2, p.v3, p.status, p.file, p.sample_types
		FROM profiles p WHERE p.source = ? AND p.service = ? AND p.type = ? AND p.start_ns BETWEEN ? AND ?`+tc+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []point
	for rows.Next() {
		var p point
		if err := rows.Scan(&p.ID, &p.StartNS, &p.EndNS, &p.V[0], &p.V[1], &p.V[2], &p.V[3], &p.Status, &p.File, &p.SampleTypes); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// topFunctions sums the attributed functions of a type over the selection.
func (v *Viewer) topFunctions(s *selection, typ string, limit int) ([]funcValue, error) {
	from, args := funcsFrom(s, typ)
	rows, err := v.ix.db.Query(`SELECT n.name, t.v0, t.v1 FROM (SELECT f.func_id, sum(f.v0) AS v0, sum(f.v1) AS v1`+from+`
		GROUP BY f.func_id) t JOIN names n ON n.id = t.func_id ORDER BY t.v0 DESC, n.name LIMIT `+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []funcValue
	for rows.Next() {
		var fv funcValue
		if err := rows.Scan(&fv.Name, &fv.V0, &fv.V1); err != nil {
			return nil, err
		}
		out = append(out, fv)
	}
	return out, rows.Err()
}

// event is a row of the events list.
type event struct {
	Kind, Instance, CycleKey string
	TimeNS                   int64
	Message                  string
	Attrs                    map[string]string
}

// events returns the events of the selection (of one kind, or all).
func (v *Viewer) events(s *selection, kind string) ([]event, error) {
	// The tag clause reads p.source, p.service, p.instance, p.cycle_key,
	// which events have too.
	tc, targs := s.tagClause()
	q := `SELECT kind, instance, cycle_key, time_ns, message, attrs FROM events p WHERE source = ? AND service = ? AND time_ns BETWEEN ? AND ?` + tc
	args := append([]any{s.Source, s.Service, s.From, s.To}, targs...)
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, kind)
	}
	rows, err := v.ix.db.Query(q+` ORDER BY time_ns, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		var attrs string
		if err := rows.Scan(&e.Kind, &e.Instance, &e.CycleKey, &e.TimeNS, &e.Message, &attrs); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(attrs), &e.Attrs)
		out = append(out, e)
	}
	return out, rows.Err()
}

// openAlerts returns the goroutine_leak events of a service whose
// instance has not come back under the count the alert reported.
func (v *Viewer) openAlerts(source, service string) []event {
	all := &selection{Source: source, Service: service, From: 0, To: 1<<63 - 1}
	leaks, err := v.events(all, "goroutine_leak")
	if err != nil {
		return nil
	}
	var open []event
	for _, e := range leaks {
		count, err := strconv.ParseInt(e.Attrs["count"], 10, 64)
		if err != nil {
			open = append(open, e)
			continue
		}
		var lower int64
		err = v.ix.db.QueryRow(`SELECT count(*) FROM profiles WHERE source = ? AND service = ? AND type = 'goroutine'
			AND instance = ? AND start_ns > ? AND status = '' AND v0 < ?`, source, service, e.Instance, e.TimeNS, count).Scan(&lower)
		if err == nil && lower == 0 {
			open = append(open, e)
		}
	}
	return open
}

// labelValues lists the pprof labels found in a type's profiles.
func (v *Viewer) labelValues(s *selection, typ string) ([][2]string, error) {
	return v.pairs(`SELECT DISTINCT l.key, l.value FROM profiles p JOIN labels l ON l.profile_id = p.id
		WHERE p.source = ? AND p.service = ? AND p.type = ? AND p.start_ns BETWEEN ? AND ? ORDER BY 1, 2 LIMIT 200`,
		s.Source, s.Service, typ, s.From, s.To)
}

// tagValues lists the source tags (and instance, host) of a service's cycles.
func (v *Viewer) tagValues(s *selection) ([][2]string, error) {
	rows, err := v.ix.db.Query(`SELECT DISTINCT tags, instance, hostname FROM cycles WHERE source = ? AND service = ? LIMIT 500`, s.Source, s.Service)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seen := map[[2]string]bool{}
	for rows.Next() {
		var tags, inst, host string
		if err := rows.Scan(&tags, &inst, &host); err != nil {
			return nil, err
		}
		m := map[string]string{}
		_ = json.Unmarshal([]byte(tags), &m)
		for k, val := range m {
			seen[[2]string{k, val}] = true
		}
		if inst != "" {
			seen[[2]string{"instance", inst}] = true
		}
		if host != "" {
			seen[[2]string{"host", host}] = true
		}
	}
	out := make([][2]string, 0, len(seen))
	for kv := range seen {
		out = append(out, kv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0]+"="+out[i][1] < out[j][0]+"="+out[j][1] })
	return out, rows.Err()
}

func (v *Viewer) pairs(q string, args ...any) ([][2]string, error) {
	rows, err := v.ix.db.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var kv [2]string
		if err := rows.Scan(&kv[0], &kv[1]); err != nil {
			return nil, err
		}
		out = append(out, kv)
	}
	return out, rows.Err()
}

// problemsOf lists what could not be read for a service (or a source's
// files that belong to no service).
func (v *Viewer) problemsOf(source, service string) []string {
	var out []string
	rows, err := v.ix.db.Query(`SELECT message FROM problems WHERE source = ? AND (service = ? OR service = '') ORDER BY file LIMIT 50`, source, service)
	if err == nil {
		for rows.Next() {
			var m string
			if rows.Scan(&m) == nil {
				out = append(out, m)
			}
		}
		rows.Close()
	}
	rows, err = v.ix.db.Query(`SELECT file, status FROM profiles WHERE source = ? AND service = ? AND status != '' ORDER BY start_ns LIMIT 50`, source, service)
	if err == nil {
		for rows.Next() {
			var f, st string
			if rows.Scan(&f, &st) == nil {
				out = append(out, f+": "+st)
			}
		}
		rows.Close()
	}
	return out
}

// spanStat is a row of span_stats.
type spanStat struct {
	CycleKey             string
	TimeNS               int64
	Name, Tags           string
	Count, P50, P90, P99 int64
	Max                  int64
	Exact                bool
}

// spanStats returns the span percentiles of the selection, oldest first.
func (v *Viewer) spanStats(s *selection) ([]spanStat, error) {
	rows, err := v.ix.db.Query(`SELECT cycle_key, time_ns, name, tags, count, p50, p90, p99, max, exact FROM span_stats
		WHERE source = ? AND service = ? AND time_ns BETWEEN ? AND ? ORDER BY time_ns, name, tags`, s.Source, s.Service, s.From, s.To)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []spanStat
	for rows.Next() {
		var st spanStat
		if err := rows.Scan(&st.CycleKey, &st.TimeNS, &st.Name, &st.Tags, &st.Count, &st.P50, &st.P90, &st.P99, &st.Max, &st.Exact); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// spansFileOf returns the file of a cycle's sampled spans, or "": a
// received cycle's spans file, or an OutputDir's timeline file (its key).
func (v *Viewer) spansFileOf(source, service, key string) string {
	var f string
	err := v.ix.db.QueryRow(`SELECT spans_file FROM cycles WHERE source = ? AND service = ? AND key = ?
		UNION ALL SELECT file FROM timelines WHERE source = ? AND service = ? AND file = ?`,
		source, service, key, source, service, key).Scan(&f)
	if err == sql.ErrNoRows {
		return ""
	}
	return f
}
