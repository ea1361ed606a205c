// Package viewer is the web UI of the reference service: it shows, over
// time, every output of pprofio's metrics matrix for what a receiver
// stored and for an agent's local OutputDir. CPU flame graphs, memory
// allocation graphs, goroutine area charts with the leak alerts, mutex
// bar charts, block shares and timelines, span percentiles and waterfalls,
// and the events.
//
// The .pb.gz files are the source of truth. An embedded SQLite index
// (modernc.org/sqlite, no cgo) derived from them answers the charts; it is
// created on first run and can be rebuilt from the files at any time.
// Flame graphs, graphs and source views are github.com/google/pprof's own
// web UI, driven through its driver package on the merge of a range.
// Everything the pages need is served by the viewer: it works offline.
//
// A Viewer is an http.Handler. Call Refresh (or Run, which calls it on a
// period) to index what arrived.
package viewer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Viewer.
type Options struct {
	// Sources are the folders shown. Required.
	Sources []Source
	// IndexPath is the SQLite index file; created if missing. Required.
	IndexPath string
	// Logger gets indexing problems and internal errors; nil discards them.
	Logger *log.Logger
}

// Viewer serves the UI over the index of its sources.
type Viewer struct {
	opts  Options
	ix    *index
	mux   *http.ServeMux
	pprof *pprofUI

	scanMu sync.Mutex
	known  map[string]map[string]bool // per local source: files indexed
	gen    atomic.Int64               // bumped each time the index grows
	rolled int64                      // the gen whose rollups are built (Run's)
}

var sourceName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// New opens (or creates) the index and returns a Viewer. It does not read
// the sources: call Refresh or Run.
func New(opts Options) (*Viewer, error) {
	if len(opts.Sources) == 0 {
		return nil, errors.New("viewer: no source to show")
	}
	seen := map[string]bool{}
	for _, s := range opts.Sources {
		if !sourceName.MatchString(s.Name) || seen[s.Name] {
			return nil, fmt.Errorf("viewer: source name %q must be unique and made of letters, digits, '.', '-', '_'", s.Name)
		}
		if s.Kind != KindReceived && s.Kind != KindLocal {
			return nil, fmt.Errorf("viewer: source %q: kind %q is not %q or %q", s.Name, s.Kind, KindReceived, KindLocal)
		}
		seen[s.Name] = true
	}
	if opts.Logger == nil {
		opts.Logger = log.New(io.Discard, "", 0)
	}
	ix, err := openIndex(opts.IndexPath)
	if err != nil {
		return nil, err
	}
	v := &Viewer{opts: opts, ix: ix, known: map[string]map[string]bool{}}
	v.pprof = newPprofUI(v)
	v.routes()
	return v, nil
}

// Close closes the index.
func (v *Viewer) Close() error { return v.ix.close() }

// Refresh indexes what arrived in the sources since the last call.
func (v *Viewer) Refresh() error {
	v.scanMu.Lock()
	defer v.scanMu.Unlock()
	var errs []error
	for _, src := range v.opts.Sources {
		for { // a step at a time: a backlog is indexed in bounded transactions
			b, err := v.scan(src)
			if err == nil {
				err = v.ix.write(b)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("source %s: %w", src.Name, err))
				break
			}
			if !b.empty() {
				v.gen.Add(1)
			}
			if !b.full {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// scan reads what is new in one source.
func (v *Viewer) scan(src Source) (*batch, error) {
	if src.Kind == KindReceived {
		return scanReceived(v.ix, src)
	}
	known := v.known[src.Name]
	if known == nil {
		var err error
		if known, err = v.ix.knownFiles(src.Name); err != nil {
			return nil, err
		}
		v.known[src.Name] = known
	}
	return scanLocal(v.ix, src, known)
}

// Run refreshes the index every period until ctx is done.
func (v *Viewer) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := v.Refresh(); err != nil {
			v.opts.Logger.Printf("viewer: indexing: %v", err)
		}
		if gen := v.gen.Load(); gen != v.rolled {
			n, err := v.BuildRollups()
			if err != nil {
				v.opts.Logger.Printf("viewer: rollups: %v", err)
			}
			if n < rollupsPerRound {
				v.rolled = gen // done for this state of the index
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Rebuild builds a fresh index of the sources at path, from the files alone.
func Rebuild(opts Options) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := removeIfExists(opts.IndexPath + suffix); err != nil {
			return err
		}
	}
	v, err := New(opts)
	if err != nil {
		return err
	}
	defer v.Close()
	if err := v.Refresh(); err != nil {
		return err
	}
	for {
		n, err := v.BuildRollups()
		if err != nil || n < rollupsPerRound {
			return err
		}
	}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
