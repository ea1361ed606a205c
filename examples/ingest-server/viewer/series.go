package viewer

// Chart series computed by SQLite: one point per profile while a range
// holds at most maxPoints of them, else averages over maxPoints buckets of
// equal time, so that a week's chart moves a few thousand rows, not the
// week's.

import (
	"fmt"
	"strings"
)

// grouping returns the GROUP BY expression of the selection's profiles of
// a type: the profile itself, or its time bucket. alias is the table
// (p: profiles, f: funcs) and xcol the time column.
func (v *Viewer) grouping(s *selection, typ, alias, xcol string) (string, error) {
	tc, targs := s.tagClause()
	var n int64
	err := v.ix.db.QueryRow(`SELECT count(*) FROM profiles p WHERE p.source = ? AND p.service = ? AND p.type = ? AND p.start_ns BETWEEN ? AND ?`+tc,
		append([]any{s.Source, s.Service, typ, s.From, s.To}, targs...)...).Scan(&n)
	if err != nil {
		return "", err
	}
	if n <= maxPoints {
		if alias == "f" {
			return "f.profile_id", nil
		}
		return alias + ".id", nil
	}
	width := (s.To-s.From)/maxPoints + 1
	return fmt.Sprintf("(%s.%s - %d) / %d", alias, xcol, s.From, width), nil
}

// funcsFrom is the FROM and WHERE of the selection's funcs rows of a type,
// with their arguments: one range of the funcs table, joined to the
// profiles only for a tag filter.
func funcsFrom(s *selection, typ string) (string, []any) {
	tc, targs := s.tagClause()
	q := ` FROM funcs f`
	if tc != "" {
		q += ` JOIN profiles p ON p.id = f.profile_id`
	}
	q += ` WHERE f.source = ? AND f.service = ? AND f.type = ? AND f.start_ns BETWEEN ? AND ?` + tc
	return q, append([]any{s.Source, s.Service, typ, s.From, s.To}, targs...)
}

// valueColumn returns the column (v0..v3) of a sample type in a type's
// profiles, or "".
func (v *Viewer) valueColumn(s *selection, typ, name string) string {
	var types string
	if v.ix.db.QueryRow(`SELECT sample_types FROM profiles WHERE source = ? AND service = ? AND type = ? AND status = '' ORDER BY start_ns DESC LIMIT 1`,
		s.Source, s.Service, typ).Scan(&types) != nil {
		return ""
	}
	if i := valueIndex(types, name); i >= 0 {
		return fmt.Sprintf("v%d", i)
	}
	return ""
}

// valueSeries returns one sample type's totals of the readable profiles,
// at each profile's xcol (start_ns or end_ns), bucketed past maxPoints.
func (v *Viewer) valueSeries(s *selection, typ, name, xcol string) ([]int64, []float64, error) {
	col := v.valueColumn(s, typ, name)
	if col == "" {
		return nil, nil, nil
	}
	group, err := v.grouping(s, typ, "p", xcol)
	if err != nil {
		return nil, nil, err
	}
	tc, targs := s.tagClause()
	rows, err := v.ix.db.Query(`SELECT CAST(avg(p.`+xcol+`) AS INTEGER), avg(p.`+col+`) FROM profiles p
		WHERE p.source = ? AND p.service = ? AND p.type = ? AND p.start_ns BETWEEN ? AND ? AND p.status = ''`+tc+`
		GROUP BY `+group+` ORDER BY 1`, append([]any{s.Source, s.Service, typ, s.From, s.To}, targs...)...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var xs []int64
	var ys []float64
	for rows.Next() {
		var x int64
		var y float64
		if err := rows.Scan(&x, &y); err != nil {
			return nil, nil, err
		}
		xs, ys = append(xs, x), append(ys, y)
	}
	return xs, ys, rows.Err()
}

// funcLayers returns, per point, the V0 of each named function (the rest
// under otherFunc), averaged per profile over a bucket.
func (v *Viewer) funcLayers(s *selection, typ string, names []string) ([]int64, []series, error) {
	group, err := v.grouping(s, typ, "p", "start_ns")
	if err != nil {
		return nil, nil, err
	}
	fgroup, err := v.grouping(s, typ, "f", "start_ns")
	if err != nil {
		return nil, nil, err
	}
	tc, targs := s.tagClause()
	base := append([]any{s.Source, s.Service, typ, s.From, s.To}, targs...)
	where := ` WHERE p.source = ? AND p.service = ? AND p.type = ? AND p.start_ns BETWEEN ? AND ? AND p.status = ''` + tc
	rows, err := v.ix.db.Query(`SELECT `+group+`, CAST(avg(p.start_ns) AS INTEGER), count(*) FROM profiles p`+where+` GROUP BY 1 ORDER BY 2`, base...)
	if err != nil {
		return nil, nil, err
	}
	var xs []int64
	pos, count := map[int64]int{}, map[int64]float64{}
	for rows.Next() {
		var g, x, n int64
		if err := rows.Scan(&g, &x, &n); err != nil {
			rows.Close()
			return nil, nil, err
		}
		pos[g], count[g] = len(xs), float64(n)
		xs = append(xs, x)
	}
	rows.Close()
	layers := make([]series, len(names)+1)
	index := map[string]int{}
	for i, n := range append(append([]string{}, names...), otherFunc) {
		layers[i] = series{Name: n, Y: make([]float64, len(xs))}
		index[n] = i
	}
	ids, class, err := v.funcClasses(names)
	if err != nil {
		return nil, nil, err
	}
	from, fargs := funcsFrom(s, typ)
	rows, err = v.ix.db.Query(`SELECT `+fgroup+`, `+class+`, sum(f.v0)`+from+` GROUP BY 1, 2`, fargs...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var g, id, sum int64
		if err := rows.Scan(&g, &id, &sum); err != nil {
			return nil, nil, err
		}
		if i, ok := pos[g]; ok {
			layers[index[ids[id]]].Y[i] = float64(sum) / count[g]
		}
	}
	return xs, layers, rows.Err()
}

// funcClasses maps the named functions' ids to their names (-1 to
// otherFunc) and returns the SQL expression that classes f.func_id so.
func (v *Viewer) funcClasses(names []string) (map[int64]string, string, error) {
	ids := map[int64]string{-1: otherFunc}
	if len(names) == 0 {
		return ids, "-1", nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := v.ix.db.Query(`SELECT id, name FROM names WHERE name IN (?`+strings.Repeat(",?", len(names)-1)+`)`, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var list []string
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, "", err
		}
		ids[id] = name
		list = append(list, fmt.Sprint(id))
	}
	if len(list) == 0 {
		return ids, "-1", rows.Err()
	}
	return ids, `CASE WHEN f.func_id IN (` + strings.Join(list, ",") + `) THEN f.func_id ELSE -1 END`, rows.Err()
}

// typeCounts is a line of the overview's table.
type typeCounts struct {
	Profiles, Unreadable int64
	First, Last          int64
}

// countTypes counts the selection's profiles of each type.
func (v *Viewer) countTypes(s *selection) (map[string]typeCounts, error) {
	tc, targs := s.tagClause()
	out := map[string]typeCounts{}
	for _, typ := range append(profileTypes[:len(profileTypes):len(profileTypes)], "custom") {
		var c typeCounts
		err := v.ix.db.QueryRow(`SELECT count(*), coalesce(sum(p.status != ''), 0), coalesce(min(p.start_ns), 0), coalesce(max(p.start_ns), 0) FROM profiles p
			WHERE p.source = ? AND p.service = ? AND p.type = ? AND p.start_ns BETWEEN ? AND ?`+tc,
			append([]any{s.Source, s.Service, typ, s.From, s.To}, targs...)...).Scan(&c.Profiles, &c.Unreadable, &c.First, &c.Last)
		if err != nil {
			return nil, err
		}
		out[typ] = c
	}
	return out, nil
}

// lastPoints returns the selection's n latest profiles of a type, newest first.
func (v *Viewer) lastPoints(s *selection, typ string, n int) ([]point, error) {
	return v.queryPoints(s, typ, ` ORDER BY p.start_ns DESC LIMIT ?`, n)
}
