package viewer

// Hourly rollups: the merge of each hour's profiles of a type, kept in
// the index, so that the flame graph of a day merges 24 profiles, not
// 1,440. A rollup records how many profiles it merged; when the hour has
// gained one (a late batch), it is built again. Like the rest of the
// index it is derived from the files and rebuilt with it.

import (
	"bytes"
	"fmt"
	"path/filepath"
	"time"

	"github.com/google/pprof/profile"
)

// rollupSpan is the time a rollup covers.
const rollupSpan = int64(time.Hour)

// rollupsPerRound bounds the rollups BuildRollups makes in one call.
const rollupsPerRound = 200

// mergeRange merges the readable profiles of a type in the selection:
// whole hours from their rollups (without a tag filter, which rollups
// do not keep apart), the rest from the files.
func (v *Viewer) mergeRange(src Source, s *selection, typ string) ([]*profile.Profile, int, error) {
	h0 := (s.From + rollupSpan - 1) / rollupSpan * rollupSpan
	h1 := (s.To + 1) / rollupSpan * rollupSpan // hours [h0, h1) lie inside [From, To]
	if s.Tag[0] != "" || h1-h0 < rollupSpan {
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
		p, err := v.rollup(src, s.Source, s.Service, typ, h, counts[h])
		if err != nil {
			return nil, 0, err
		}
		stored += int(counts[h])
		if p != nil {
			parts = append(parts, p)
		}
	}
	return parts, stored, nil
}

// readRange parses the readable files of a type in the selection; it
// returns them and how many profiles the range stores.
func (v *Viewer) readRange(src Source, s *selection, typ string) ([]*profile.Profile, int, error) {
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
// merged want profiles, else built from the files and stored. nil means
// none of them could be read.
func (v *Viewer) rollup(src Source, source, service, typ string, hour, want int64) (*profile.Profile, error) {
	var data []byte
	var n int64
	err := v.ix.db.QueryRow(`SELECT profiles, data FROM rollups WHERE source = ? AND service = ? AND type = ? AND hour_ns = ?`,
		source, service, typ, hour).Scan(&n, &data)
	if err == nil && n == want {
		if p, err := profile.ParseData(data); err == nil {
			return p, nil
		}
	}
	s := &selection{Source: source, Service: service, From: hour, To: hour + rollupSpan - 1}
	ps, _, err := v.readRange(src, s, typ)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	merged, err := profile.Merge(ps)
	if err != nil {
		return nil, fmt.Errorf("the %s profiles of the hour from %s cannot be merged: %v", typ, formatTime(hour), err)
	}
	var buf bytes.Buffer
	if err := merged.Write(&buf); err != nil {
		return nil, err
	}
	_, err = v.ix.db.Exec(`INSERT OR REPLACE INTO rollups (source, service, type, hour_ns, profiles, data) VALUES (?,?,?,?,?,?)`,
		source, service, typ, hour, want, buf.Bytes())
	return merged, err
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
		if _, err := v.rollup(src, t.source, t.service, t.typ, t.hour, t.n); err != nil {
			return 0, err
		}
	}
	return len(work), nil
}
