package viewer

// Hourly rollups: the merge of each hour's profiles of a type, kept in
// the index, so that the flame graph of a day merges 24 profiles, not
// 1,440. A tag filter is answered by the rollups too: a rollup whose
// cycles share one tag set (source tags, instance, host) keeps it beside
// the profile, and is taken whole or not at all; otherwise each of its
// samples carries its cycle's tags as labels named tagLabel+key, and the
// filter keeps the samples of the tag (then the labels are removed). A rollup records how many
// profiles it merged; when the hour has gained one (a late batch), it is
// built again. Like the rest of the index it is derived from the files
// and rebuilt with it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// tagLabel prefixes the labels that carry a cycle's source tags in a rollup.
const tagLabel = "pprofio.tag."

// rollupSpan is the time a rollup covers.
const rollupSpan = int64(time.Hour)

// rollupsPerRound bounds the rollups BuildRollups makes in one call.
const rollupsPerRound = 200

// mergeRange returns the readable profiles of a type in the selection,
// to be merged: whole hours from their rollups (the samples of the
// selection's tag, without the tag labels), the rest from the files.
func (v *Viewer) mergeRange(src Source, s *selection, typ string) ([]*profile.Profile, int, error) {
	h0 := (s.From + rollupSpan - 1) / rollupSpan * rollupSpan
	h1 := (s.To + 1) / rollupSpan * rollupSpan // hours [h0, h1) lie inside [From, To]
	if h1-h0 < rollupSpan {
		return v.readRange(src, s, typ)
	}
	var parts []*profile.Profile
	stored := 0
	for _, edge := range [][2]int64{{s.From, h0 - 1}, {h1, s.To}} {
		if edge[1] < edge[0] {
			continue
		}
		e := *s
		e.From, e.To = edge[0], edge[1]
		ps, n, err := v.readRange(src, &e, typ)
		if err != nil {
			return nil, 0, err
		}
		parts, stored = append(parts, ps...), stored+n
	}
	counts, err := v.hourCounts(s.Source, s.Service, typ, h0, h1-1)
	if err != nil {
		return nil, 0, err
	}
	for h := h0; h < h1; h += rollupSpan {
		if counts[h] == 0 {
			continue
		}
		p, tags, err := v.rollup(src, s.Source, s.Service, typ, h, counts[h])
		if err != nil {
			return nil, 0, err
		}
		stored += int(counts[h])
		if p != nil {
			if p = ofTag(p, tags, s.Tag); p != nil {
				parts = append(parts, p)
			}
		}
	}
	return parts, stored, nil
}

// ofTag returns what of a rollup has the tag (all of it when tag is
// empty), nil for nothing: the whole rollup or none when its cycles share
// their tags, else the samples that carry the tag, their tag labels removed.
func ofTag(p *profile.Profile, shared map[string]string, tag [2]string) *profile.Profile {
	if shared != nil {
		if val, ok := shared[tag[0]]; tag[0] != "" && (!ok || val != tag[1]) {
			return nil
		}
		return p
	}
	if tag[0] != "" {
		p.FilterSamplesByTag(func(smp *profile.Sample) bool { return hasLabel(smp, [2]string{tagLabel + tag[0], tag[1]}) }, nil)
	}
	for _, smp := range p.Sample {
		for k := range smp.Label {
			if strings.HasPrefix(k, tagLabel) {
				delete(smp.Label, k)
			}
		}
	}
	return p
}

// cycleTags returns, per profile id of the selection's type, its cycle's
// source tags with instance and host, as the tag filter reads them.
func (v *Viewer) cycleTags(s *selection, typ string) (map[int64]map[string]string, error) {
	rows, err := v.ix.db.Query(`SELECT p.id, p.instance, coalesce(c.hostname, ''), coalesce(c.tags, '{}') FROM profiles p
		LEFT JOIN cycles c ON c.source = p.source AND c.service = p.service AND c.key = p.cycle_key
		WHERE p.source = ? AND p.service = ? AND p.type = ? AND p.start_ns BETWEEN ? AND ? AND p.status = ''`,
		s.Source, s.Service, typ, s.From, s.To)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]map[string]string{}
	for rows.Next() {
		var id int64
		var inst, host, tags string
		if err := rows.Scan(&id, &inst, &host, &tags); err != nil {
			return nil, err
		}
		m := map[string]string{}
		_ = json.Unmarshal([]byte(tags), &m)
		if inst != "" {
			m["instance"] = inst
		}
		if host != "" {
			m["host"] = host
		}
		out[id] = m
	}
	return out, rows.Err()
}

// tagSamples labels every sample of p with the source tags.
func tagSamples(p *profile.Profile, tags map[string]string) {
	for _, smp := range p.Sample {
		if smp.Label == nil {
			smp.Label = map[string][]string{}
		}
		for k, val := range tags {
			smp.Label[tagLabel+k] = []string{val}
		}
	}
}

// readRange parses the readable files of a type in the selection; it
// returns them and how many profiles the range stores.
func (v *Viewer) readRange(src Source, s *selection, typ string) ([]*profile.Profile, int, error) {
	return v.readFiles(src, s, typ, nil)
}

// readFiles is readRange; with tags, each profile's samples are labelled
// with its cycle's tags (tagSamples).
func (v *Viewer) readFiles(src Source, s *selection, typ string, tags map[int64]map[string]string) ([]*profile.Profile, int, error) {
	pts, err := v.points(s, typ)
	if err != nil {
		return nil, 0, err
	}
	var ps []*profile.Profile
	for _, pt := range pts {
		if pt.Status != "" {
			continue
		}
		data, err := readLimited(filepath.Join(src.Dir, pt.File))
		if err != nil {
			continue
		}
		if p, err := profile.ParseData(data); err == nil {
			if tags != nil {
				tagSamples(p, tags[pt.ID])
			}
			ps = append(ps, p)
		}
	}
	return ps, len(pts), nil
}

// hourCounts counts the readable profiles of a type per hour in [from, to].
func (v *Viewer) hourCounts(source, service, typ string, from, to int64) (map[int64]int64, error) {
	rows, err := v.ix.db.Query(`SELECT start_ns / ? * ?, count(*) FROM profiles WHERE source = ? AND service = ? AND type = ?
		AND start_ns BETWEEN ? AND ? AND status = '' GROUP BY 1`, rollupSpan, rollupSpan, source, service, typ, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var h, n int64
		if err := rows.Scan(&h, &n); err != nil {
			return nil, err
		}
		out[h] = n
	}
	return out, rows.Err()
}

// rollup returns the merge of an hour's profiles, from the index when it
// merged want profiles, else built from the files and stored; nil means
// none of them could be read. When every cycle of the hour carries the
// same tags, they are returned (and the samples carry none); else tags is
// nil and each sample carries its cycle's tags as labels.
func (v *Viewer) rollup(src Source, source, service, typ string, hour, want int64) (p *profile.Profile, tags map[string]string, err error) {
	var data []byte
	var n int64
	var shared string
	err = v.ix.db.QueryRow(`SELECT profiles, tags, data FROM rollups WHERE source = ? AND service = ? AND type = ? AND hour_ns = ?`,
		source, service, typ, hour).Scan(&n, &shared, &data)
	if err == nil && n == want {
		if p, err := profile.ParseData(data); err == nil {
			if shared != "" {
				_ = json.Unmarshal([]byte(shared), &tags)
			}
			return p, tags, nil
		}
	}
	s := &selection{Source: source, Service: service, From: hour, To: hour + rollupSpan - 1}
	byProfile, err := v.cycleTags(s, typ)
	if err != nil {
		return nil, nil, err
	}
	shared, tags = sharedTags(byProfile)
	if tags != nil {
		byProfile = nil // one tag set: kept beside the rollup, not on each sample
	}
	ps, _, err := v.readFiles(src, s, typ, byProfile)
	if err != nil || len(ps) == 0 {
		return nil, nil, err
	}
	merged, err := profile.Merge(ps)
	if err != nil {
		return nil, nil, fmt.Errorf("the %s profiles of the hour from %s cannot be merged: %v", typ, formatTime(hour), err)
	}
	var buf bytes.Buffer
	if err := merged.Write(&buf); err != nil {
		return nil, nil, err
	}
	_, err = v.ix.db.Exec(`INSERT OR REPLACE INTO rollups (source, service, type, hour_ns, profiles, tags, data) VALUES (?,?,?,?,?,?,?)`,
		source, service, typ, hour, want, shared, buf.Bytes())
	return merged, tags, err
}

// sharedTags returns the tag set every profile's cycle carries (as JSON
// and as a map), or "" and nil when they differ.
func sharedTags(byProfile map[int64]map[string]string) (string, map[string]string) {
	shared, tags := "", map[string]string(nil)
	for _, m := range byProfile {
		text, _ := json.Marshal(m)
		if tags == nil {
			shared, tags = string(text), m
		} else if string(text) != shared {
			return "", nil
		}
	}
	if tags == nil {
		return "{}", map[string]string{}
	}
	return shared, tags
}

// BuildRollups makes the missing or outdated rollups of hours that are
// over (newer profiles of their type exist), at most rollupsPerRound of
// them; it returns how many it made.
func (v *Viewer) BuildRollups() (int, error) {
	rows, err := v.ix.db.Query(`WITH hours AS (
			SELECT source, service, type, start_ns / ? * ? AS hour_ns, count(*) AS n FROM profiles WHERE status = '' GROUP BY 1, 2, 3, 4),
		latest AS (SELECT source, service, type, max(hour_ns) AS last FROM hours GROUP BY 1, 2, 3)
		SELECT h.source, h.service, h.type, h.hour_ns, h.n FROM hours h
		JOIN latest l ON l.source = h.source AND l.service = h.service AND l.type = h.type AND h.hour_ns < l.last
		LEFT JOIN rollups r ON r.source = h.source AND r.service = h.service AND r.type = h.type AND r.hour_ns = h.hour_ns
		WHERE r.profiles IS NULL OR r.profiles != h.n LIMIT ?`, rollupSpan, rollupSpan, rollupsPerRound)
	if err != nil {
		return 0, err
	}
	type todo struct {
		source, service, typ string
		hour, n              int64
	}
	var work []todo
	for rows.Next() {
		var t todo
		if err := rows.Scan(&t.source, &t.service, &t.typ, &t.hour, &t.n); err != nil {
			rows.Close()
			return 0, err
		}
		work = append(work, t)
	}
	rows.Close()
	for _, t := range work {
		src, ok := v.sourceOf(t.source)
		if !ok || !knownType(t.typ) {
			continue
		}
		if _, _, err := v.rollup(src, t.source, t.service, t.typ, t.hour, t.n); err != nil {
			return 0, err
		}
	}
	return len(work), nil
}
