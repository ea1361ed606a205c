package viewer

// The SQL index: what the pages ask for, derived from the stored files so
// that a week of cycles answers without opening them. It can always be
// dropped and rebuilt from the files (Rebuild).

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// schemaVersion changes whenever the tables below change; an index of
// another version is dropped and rebuilt from the files.
const schemaVersion = "9"

var schema = []string{
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	// A cycle: one accepted batch (received) or one heap window (local).
	`CREATE TABLE cycles (
		id INTEGER PRIMARY KEY, source TEXT NOT NULL, service TEXT NOT NULL,
		key TEXT NOT NULL, instance TEXT NOT NULL, hostname TEXT NOT NULL,
		seq INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
		received_ns INTEGER NOT NULL, tags TEXT NOT NULL, spans_file TEXT NOT NULL,
		UNIQUE (source, service, key))`,
	`CREATE INDEX cycles_time ON cycles (source, service, start_ns)`,
	// A profile file; status is "" when it parsed, else why it did not.
	`CREATE TABLE profiles (
		id INTEGER PRIMARY KEY, source TEXT NOT NULL, service TEXT NOT NULL,
		type TEXT NOT NULL, cycle_key TEXT NOT NULL, instance TEXT NOT NULL,
		start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, file TEXT NOT NULL,
		bytes INTEGER NOT NULL, status TEXT NOT NULL, sample_types TEXT NOT NULL,
		v0 INTEGER NOT NULL, v1 INTEGER NOT NULL, v2 INTEGER NOT NULL, v3 INTEGER NOT NULL,
		UNIQUE (source, file))`,
	// Covering the charts' questions, so that they never visit the table.
	`CREATE INDEX profiles_time ON profiles (source, service, type, start_ns, status, end_ns, v0, v1, v2, v3, instance)`,
	// The functions a profile's value is attributed to (its top ones),
	// stored in time order per service and type (with the profile's key
	// copied in) so that a range is one sweep of this table, no join.
	`CREATE TABLE funcs (source TEXT NOT NULL, service TEXT NOT NULL, type TEXT NOT NULL, start_ns INTEGER NOT NULL,
		profile_id INTEGER NOT NULL, func_id INTEGER NOT NULL, v0 INTEGER NOT NULL, v1 INTEGER NOT NULL,
		PRIMARY KEY (source, service, type, start_ns, profile_id, func_id)) WITHOUT ROWID`,
	// Function names, once each: funcs groups and sorts by number.
	`CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
	// The pprof labels present in a profile (filters of the CPU page).
	`CREATE TABLE labels (profile_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL)`,
	`CREATE INDEX labels_profile ON labels (profile_id)`,
	`CREATE TABLE events (
		id INTEGER PRIMARY KEY, source TEXT NOT NULL, service TEXT NOT NULL,
		cycle_key TEXT NOT NULL, instance TEXT NOT NULL, kind TEXT NOT NULL,
		time_ns INTEGER NOT NULL, message TEXT NOT NULL, attrs TEXT NOT NULL)`,
	`CREATE INDEX events_time ON events (source, service, time_ns)`,
	// Latency of each span series (name and tag set) in each cycle; exact
	// is 1 when it is the agent's aggregate of every span of the cycle, 0
	// when it was computed from the cycle's sampled spans.
	`CREATE TABLE span_stats (
		source TEXT NOT NULL, service TEXT NOT NULL, cycle_key TEXT NOT NULL,
		time_ns INTEGER NOT NULL, name TEXT NOT NULL, tags TEXT NOT NULL, count INTEGER NOT NULL,
		p50 INTEGER NOT NULL, p90 INTEGER NOT NULL, p99 INTEGER NOT NULL, max INTEGER NOT NULL, exact INTEGER NOT NULL)`,
	`CREATE INDEX span_stats_time ON span_stats (source, service, time_ns)`,
	// The timeline files of an OutputDir (<service>/timeline/<window>.jsonl):
	// a cycle's span timings and sampled spans; file is also the cycle_key
	// of its span_stats.
	`CREATE TABLE timelines (source TEXT NOT NULL, service TEXT NOT NULL, file TEXT NOT NULL,
		start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, UNIQUE (source, file))`,
	// Files whose content could not be indexed at all (not a profile).
	`CREATE TABLE problems (source TEXT NOT NULL, service TEXT NOT NULL, file TEXT NOT NULL, message TEXT NOT NULL, UNIQUE (source, file))`,
	// The merge of each hour's readable profiles of a type (rollup.go);
	// tags is the tag set (JSON) all its cycles share, "" when they differ.
	`CREATE TABLE rollups (source TEXT NOT NULL, service TEXT NOT NULL, type TEXT NOT NULL, hour_ns INTEGER NOT NULL,
		profiles INTEGER NOT NULL, tags TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (source, service, type, hour_ns))`,
	// How far each source has been read (batches file offset).
	`CREATE TABLE progress (source TEXT PRIMARY KEY, offset INTEGER NOT NULL)`,
}

// index is the SQLite database. Writes go through one connection at a
// time (SQLite's rule); reads run beside them thanks to WAL.
type index struct {
	db *sql.DB
}

// openIndex opens (creating if needed) the index at path; an index of
// another schema version is deleted and created anew.
func openIndex(path string) (*index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	ix, err := openIndexFile(path)
	if err != nil {
		return nil, err
	}
	var v string
	err = ix.db.QueryRow(`SELECT value FROM meta WHERE key = 'schema'`).Scan(&v)
	if err == nil && v == schemaVersion {
		return ix, nil
	}
	ix.db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
	if ix, err = openIndexFile(path); err != nil {
		return nil, err
	}
	return ix, ix.create()
}

func openIndexFile(path string) (*index, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)" +
		"&_pragma=cache_size(-32768)&_pragma=mmap_size(1073741824)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening the index %s: %w", path, err)
	}
	return &index{db: db}, nil
}

// create makes the tables of an empty index.
func (ix *index) create() error {
	tx, err := ix.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range schema {
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("creating the index: %w", err)
		}
	}
	if _, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('schema', ?)`, schemaVersion); err != nil {
		return err
	}
	return tx.Commit()
}

func (ix *index) close() error { return ix.db.Close() }

// cycleRow is a row of cycles.
type cycleRow struct {
	Source, Service, Key, Instance, Hostname string
	Seq                                      int64
	StartNS, EndNS, ReceivedNS               int64
	Tags                                     map[string]string
	SpansFile                                string
}

// profileRow is a row of profiles with its funcs and labels.
type profileRow struct {
	Source, Service, Type, CycleKey, Instance string
	StartNS, EndNS                            int64
	File                                      string
	Bytes                                     int64
	Summary                                   *summary
	Status                                    string
}

// eventRow is a row of events.
type eventRow struct {
	Source, Service, CycleKey, Instance, Kind string
	TimeNS                                    int64
	Message                                   string
	Attrs                                     map[string]string
}

// spanStatRow is a row of span_stats.
type spanStatRow struct {
	Source, Service, CycleKey string
	TimeNS                    int64
	Name, Tags                string // Tags: "k=v k=v", sorted by key
	Count, P50, P90, P99, Max int64
	Exact                     bool
}

// timelineRow is a row of timelines.
type timelineRow struct {
	Source, Service, File string
	StartNS, EndNS        int64
}

// batch is what one step of indexing adds, written in one transaction.
type batch struct {
	cycles    []cycleRow
	profiles  []profileRow
	events    []eventRow
	spanStats []spanStatRow
	timelines []timelineRow
	problems  [][4]string // source, service, file, message
	progress  map[string]int64
	full      bool // the scan stopped at its bound: more is waiting
}

func (b *batch) empty() bool {
	return len(b.cycles)+len(b.profiles)+len(b.events)+len(b.spanStats)+len(b.timelines)+len(b.problems)+len(b.progress) == 0
}

// write adds b to the index in one transaction; rows already present
// (same source and key or file) are kept as they are.
func (ix *index) write(b *batch) error {
	if b.empty() {
		return nil
	}
	tx, err := ix.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, c := range b.cycles {
		tags, _ := json.Marshal(c.Tags)
		if _, err := tx.Exec(`INSERT OR IGNORE INTO cycles (source, service, key, instance, hostname, seq, start_ns, end_ns, received_ns, tags, spans_file)
			VALUES (?,?,?,?,?,?,?,?,?,?,?)`, c.Source, c.Service, c.Key, c.Instance, c.Hostname, c.Seq,
			c.StartNS, c.EndNS, c.ReceivedNS, string(tags), c.SpansFile); err != nil {
			return err
		}
	}
	if len(b.profiles) > 0 {
		st, err := prepareProfileStmts(tx)
		if err != nil {
			return err
		}
		defer st.close()
		for i := range b.profiles {
			if err := st.write(&b.profiles[i]); err != nil {
				return err
			}
		}
	}
	for _, e := range b.events {
		attrs, _ := json.Marshal(e.Attrs)
		if _, err := tx.Exec(`INSERT INTO events (source, service, cycle_key, instance, kind, time_ns, message, attrs) VALUES (?,?,?,?,?,?,?,?)`,
			e.Source, e.Service, e.CycleKey, e.Instance, e.Kind, e.TimeNS, e.Message, string(attrs)); err != nil {
			return err
		}
	}
	for _, s := range b.spanStats {
		if _, err := tx.Exec(`INSERT INTO span_stats (source, service, cycle_key, time_ns, name, tags, count, p50, p90, p99, max, exact) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
			s.Source, s.Service, s.CycleKey, s.TimeNS, s.Name, s.Tags, s.Count, s.P50, s.P90, s.P99, s.Max, s.Exact); err != nil {
			return err
		}
	}
	for _, t := range b.timelines {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO timelines (source, service, file, start_ns, end_ns) VALUES (?,?,?,?,?)`,
			t.Source, t.Service, t.File, t.StartNS, t.EndNS); err != nil {
			return err
		}
	}
	for _, p := range b.problems {
		if _, err := tx.Exec(`INSERT OR REPLACE INTO problems (source, service, file, message) VALUES (?,?,?,?)`, p[0], p[1], p[2], p[3]); err != nil {
			return err
		}
	}
	for src, off := range b.progress {
		if _, err := tx.Exec(`INSERT OR REPLACE INTO progress (source, offset) VALUES (?,?)`, src, off); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// profileStmts are the prepared inserts of a profile and its rows.
type profileStmts struct {
	profile, fn, label, name, nameID *sql.Stmt
	ids                              map[string]int64
}

func prepareProfileStmts(tx *sql.Tx) (*profileStmts, error) {
	var st profileStmts
	var err error
	if st.profile, err = tx.Prepare(`INSERT OR IGNORE INTO profiles (source, service, type, cycle_key, instance, start_ns, end_ns, file, bytes, status, sample_types, v0, v1, v2, v3)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`); err != nil {
		return nil, err
	}
	if st.fn, err = tx.Prepare(`INSERT INTO funcs (source, service, type, start_ns, profile_id, func_id, v0, v1) VALUES (?,?,?,?,?,?,?,?)`); err != nil {
		st.close()
		return nil, err
	}
	if st.label, err = tx.Prepare(`INSERT INTO labels (profile_id, key, value) VALUES (?,?,?)`); err != nil {
		st.close()
		return nil, err
	}
	if st.name, err = tx.Prepare(`INSERT OR IGNORE INTO names (name) VALUES (?)`); err != nil {
		st.close()
		return nil, err
	}
	if st.nameID, err = tx.Prepare(`SELECT id FROM names WHERE name = ?`); err != nil {
		st.close()
		return nil, err
	}
	st.ids = map[string]int64{}
	return &st, nil
}

func (st *profileStmts) close() {
	for _, s := range []*sql.Stmt{st.profile, st.fn, st.label, st.name, st.nameID} {
		if s != nil {
			s.Close()
		}
	}
}

// nameOf returns the id of a function name, adding it if new.
func (st *profileStmts) nameOf(name string) (int64, error) {
	if id, ok := st.ids[name]; ok {
		return id, nil
	}
	if _, err := st.name.Exec(name); err != nil {
		return 0, err
	}
	var id int64
	if err := st.nameID.QueryRow(name).Scan(&id); err != nil {
		return 0, err
	}
	st.ids[name] = id
	return id, nil
}

// write inserts one profile with its functions and labels.
func (st *profileStmts) write(p *profileRow) error {
	s := p.Summary
	if s == nil {
		s = &summary{}
	}
	var v [4]int64
	copy(v[:], s.Totals)
	res, err := st.profile.Exec(p.Source, p.Service, p.Type, p.CycleKey, p.Instance, p.StartNS, p.EndNS,
		p.File, p.Bytes, p.Status, strings.Join(s.SampleTypes, " "), v[0], v[1], v[2], v[3])
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	for _, f := range s.Funcs {
		fid, err := st.nameOf(f.Name)
		if err != nil {
			return err
		}
		if _, err := st.fn.Exec(p.Source, p.Service, p.Type, p.StartNS, id, fid, f.V0, f.V1); err != nil {
			return err
		}
	}
	for _, l := range s.Labels {
		if _, err := st.label.Exec(id, l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

// progress returns how far a source's batches file has been read.
func (ix *index) progress(source string) int64 {
	var off int64
	_ = ix.db.QueryRow(`SELECT offset FROM progress WHERE source = ?`, source).Scan(&off)
	return off
}

// knownFiles returns the files (and problem files) of a source already indexed.
func (ix *index) knownFiles(source string) (map[string]bool, error) {
	known := make(map[string]bool)
	for _, q := range []string{`SELECT file FROM profiles WHERE source = ?`, `SELECT file FROM problems WHERE source = ?`,
		`SELECT file FROM timelines WHERE source = ?`} {
		rows, err := ix.db.Query(q, source)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				rows.Close()
				return nil, err
			}
			known[f] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return known, nil
}

// dump returns every row of the index (ids, read offsets and rollups,
// which are caches, left out) as
// sorted text lines: two indexes of the same files dump the same.
func (ix *index) dump() ([]string, error) {
	queries := map[string]string{
		"cycle":    `SELECT source, service, key, instance, hostname, seq, start_ns, end_ns, received_ns, tags, spans_file FROM cycles`,
		"profile":  `SELECT source, service, type, cycle_key, instance, start_ns, end_ns, file, bytes, status, sample_types, v0, v1, v2, v3 FROM profiles`,
		"func":     `SELECT p.file, n.name, f.v0, f.v1 FROM funcs f JOIN profiles p ON p.id = f.profile_id JOIN names n ON n.id = f.func_id`,
		"label":    `SELECT p.file, l.key, l.value FROM labels l JOIN profiles p ON p.id = l.profile_id`,
		"event":    `SELECT source, service, cycle_key, instance, kind, time_ns, message, attrs FROM events`,
		"span":     `SELECT source, service, cycle_key, time_ns, name, tags, count, p50, p90, p99, max, exact FROM span_stats`,
		"timeline": `SELECT source, service, file, start_ns, end_ns FROM timelines`,
		"problem":  `SELECT source, service, file, message FROM problems`,
	}
	var out []string
	for name, q := range queries {
		rows, err := ix.db.Query(q)
		if err != nil {
			return nil, err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, fmt.Sprintf("%s %v", name, vals))
		}
		rows.Close()
	}
	sort.Strings(out)
	return out, nil
}
