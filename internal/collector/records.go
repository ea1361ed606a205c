package collector

import (
	"errors"
	"time"

	"github.com/pprofio/pprofio/internal/core"
	"github.com/pprofio/pprofio/internal/records"
)

// UseRecords makes the heap, mutex and block profiles from the runtime's
// records (internal/records: no runtime/pprof profile written, inflated
// and decoded each cycle; the same samples stack by stack) where the build
// supports it. False: runtime/pprof's profiles, subtracted by the core.
// Read when a collector is made.
var UseRecords = records.Supported

// snapshotter is what records.Heap and records.Contention share.
type snapshotter interface {
	Snapshot(emit bool) (int, bool, error)
	WriteTo(w *core.ProfileWriter) error
	SetLimit(n int64)
	Bytes() int64
	Close()
}

// recordSet holds a collector's record tables, one per profile type, made
// on first use; a type whose table failed goes runtime/pprof's way after.
// Each table is bounded (bound, MaxBufferBytes/4, as the core bounds a
// delta baseline, C and Go memory together): a table that would pass it
// is freed and its type goes runtime/pprof's way, whose baseline and
// buffer bounds then apply.
type recordSet struct {
	tables [core.Block + 1]snapshotter
	failed [core.Block + 1]bool
	bound  int64 // each table's, C and Go; 0: none
	peak   int64 // the most the tables held together
}

// table returns the record table of t, or nil: runtime/pprof's way.
func (s *recordSet) table(t core.Type) (snapshotter, error) {
	if s == nil || (t != core.Heap && t != core.Mutex && t != core.Block) || s.failed[t] {
		return nil, nil
	}
	if s.tables[t] != nil {
		return s.tables[t], nil
	}
	var tab snapshotter
	var err error
	switch t {
	case core.Heap:
		tab, err = records.NewHeap()
	case core.Mutex:
		tab, err = records.NewMutex()
	default:
		tab, err = records.NewBlock()
	}
	if err != nil {
		s.failed[t] = true
		return nil, err
	}
	tab.SetLimit(s.bound)
	s.tables[t] = tab
	return tab, nil
}

// held is what the tables hold now, and the most they held.
func (s *recordSet) held() (now, peak int64) {
	for _, tab := range s.tables {
		if tab != nil {
			now += tab.Bytes()
		}
	}
	s.peak = max(s.peak, now)
	return now, s.peak
}

// fail drops t's table: from now on t goes runtime/pprof's way.
func (s *recordSet) fail(t core.Type) {
	if s.tables[t] != nil {
		s.tables[t].Close()
		s.tables[t] = nil
	}
	s.failed[t] = true
}

func (s *recordSet) close() {
	if s == nil {
		return
	}
	for t := range s.tables {
		if s.tables[t] != nil {
			s.tables[t].Close()
			s.tables[t] = nil
		}
	}
}

// snapshotRecords takes a snapshot of t from the runtime's records: a
// window's start only keeps the values; otherwise the profile (its
// window's delta, or the first heap snapshot's totals) goes to the core
// as raw pprof. False: the records could not be read; the caller takes
// runtime/pprof's profile instead (and t goes that way from now on).
func (c *Collector) snapshotRecords(tab snapshotter, t core.Type, name string, cycle int64, start time.Time,
	baseline bool) bool {
	_, isDelta, err := tab.Snapshot(!baseline)
	c.agent.RecordsHeld(c.recs.held())
	if err != nil {
		c.recs.fail(t)
		c.agent.RecordsHeld(c.recs.held())
		msg := "pprofio: cannot read the runtime's records; taking runtime/pprof profiles instead"
		if errors.Is(err, records.ErrBound) {
			msg = "pprofio: the record table would pass its memory bound (MaxBufferBytes/4); " +
				"taking runtime/pprof profiles instead"
		}
		c.log.Warn(msg, "type", name, "err", err)
		return false
	}
	if baseline {
		c.windowStart = start
		return true
	}
	w, err := c.agent.BeginRaw(t, cycle, start, isDelta)
	if err != nil {
		c.log.Error("pprofio: cannot take a profile", "type", name, "err", err)
		return true
	}
	err = tab.WriteTo(w)
	if ferr := w.Finish(err == nil, time.Now()); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		c.log.Warn("pprofio: a profile was not kept", "type", name, "cycle", cycle, "err", err)
	}
	return true
}
