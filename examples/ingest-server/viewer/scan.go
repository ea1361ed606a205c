package viewer

// Reading the two layouts into the index: the receiver's data folder
// (batches.jsonl names every batch and its files) and an agent's OutputDir
// (<service>/<type>/<start>_<end>.pb.gz). Each scan reads only what is new,
// so calling it every few seconds keeps the pages live.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Source kinds.
const (
	KindReceived = "received" // a receiver's -data folder
	KindLocal    = "local"    // an agent's OutputDir
)

// batchesFile is the receiver's log of accepted batches.
const batchesFile = "batches.jsonl"

// fileTimeLayout is the time format of file names in both layouts.
const fileTimeLayout = "20060102T150405.000Z"

// maxFileBytes bounds what is read of one stored file.
const maxFileBytes = 256 << 20

// scanBatches and scanFiles bound what one scan step indexes (and holds
// in memory), in batches of a received source and files of a local one.
var (
	scanBatches = 500
	scanFiles   = 2500
)

// Source is a folder the viewer shows.
type Source struct {
	Name string // in URLs and on pages; letters, digits, '-', '_', '.'
	Dir  string
	Kind string // KindReceived or KindLocal
}

// batchLine is what the viewer reads of a batches.jsonl line.
type batchLine struct {
	BatchID  string    `json:"batch_id"`
	Sequence int64     `json:"sequence"`
	Received time.Time `json:"received"`
	Source   struct {
		Service    string            `json:"service"`
		InstanceID string            `json:"instance_id"`
		Hostname   string            `json:"hostname"`
		Tags       map[string]string `json:"tags"`
	} `json:"source"`
	Profiles []struct {
		Type          string `json:"type"`
		StartUnixNano int64  `json:"start_unix_nano"`
		EndUnixNano   int64  `json:"end_unix_nano"`
		Bytes         int64  `json:"bytes"`
		File          string `json:"file"`
	} `json:"profiles"`
	Events []struct {
		Kind         string            `json:"kind"`
		TimeUnixNano int64             `json:"time_unix_nano"`
		Message      string            `json:"message"`
		Attributes   map[string]string `json:"attributes"`
	} `json:"events"`
	SpansFile string `json:"spans_file"`
}

// scanReceived indexes the batches appended to src's batches file since
// the last scan. Only whole lines are read.
func scanReceived(ix *index, src Source) (*batch, error) {
	b := &batch{progress: map[string]int64{}}
	off := ix.progress(src.Name)
	f, err := os.Open(filepath.Join(src.Dir, batchesFile))
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<16)
	for n := 0; ; n++ {
		if n == scanBatches {
			b.full = true
			break
		}
		line, err := r.ReadBytes('\n')
		if err != nil { // EOF or a partial last line: read it next time
			break
		}
		lineOff := off
		off += int64(len(line))
		var bl batchLine
		if err := json.Unmarshal(line, &bl); err != nil || bl.BatchID == "" {
			b.problems = append(b.problems, [4]string{src.Name, "", fmt.Sprintf("%s@%d", batchesFile, lineOff),
				fmt.Sprintf("%s: a line at byte %d is not a batch: %.200s", batchesFile, lineOff, strings.TrimSpace(string(line)))})
			continue
		}
		addBatch(b, src, &bl)
	}
	if off != ix.progress(src.Name) {
		b.progress[src.Name] = off
	}
	return b, nil
}

// addBatch adds one accepted batch: its cycle, profiles, events and spans.
func addBatch(b *batch, src Source, bl *batchLine) {
	service := bl.Source.Service
	c := cycleRow{Source: src.Name, Service: service, Key: bl.BatchID, Instance: bl.Source.InstanceID,
		Hostname: bl.Source.Hostname, Seq: bl.Sequence, ReceivedNS: bl.Received.UnixNano(),
		Tags: bl.Source.Tags, SpansFile: bl.SpansFile}
	for _, p := range bl.Profiles {
		if c.StartNS == 0 || p.StartUnixNano < c.StartNS {
			c.StartNS = p.StartUnixNano
		}
		c.EndNS = max(c.EndNS, p.EndUnixNano)
		row := profileRow{Source: src.Name, Service: service, Type: p.Type, CycleKey: bl.BatchID,
			Instance: bl.Source.InstanceID, StartNS: p.StartUnixNano, EndNS: p.EndUnixNano, File: p.File, Bytes: p.Bytes}
		readProfile(src.Dir, &row)
		b.profiles = append(b.profiles, row)
	}
	var stats []spanStatRow
	for _, p := range b.profiles[len(b.profiles)-len(bl.Profiles):] {
		if p.Type == "custom" && p.Summary != nil {
			stats = append(stats, p.Summary.Spans...) // the agent's exact aggregates
		}
	}
	if bl.SpansFile != "" {
		sampled, first, last, err := spanStatsOf(src.Dir, bl.SpansFile)
		if len(stats) == 0 {
			stats = sampled // a batch without the aggregates: from its sampled spans
		}
		if err != nil {
			b.problems = append(b.problems, [4]string{src.Name, service, bl.SpansFile, err.Error()})
		}
		if c.StartNS == 0 && err == nil {
			c.StartNS, c.EndNS = first, last
		}
	}
	if c.StartNS == 0 {
		c.StartNS, c.EndNS = c.ReceivedNS, c.ReceivedNS
	}
	for _, s := range stats {
		s.Source, s.Service, s.CycleKey, s.TimeNS = src.Name, service, bl.BatchID, c.StartNS
		b.spanStats = append(b.spanStats, s)
	}
	for _, e := range bl.Events {
		b.events = append(b.events, eventRow{Source: src.Name, Service: service, CycleKey: bl.BatchID,
			Instance: bl.Source.InstanceID, Kind: e.Kind, TimeNS: e.TimeUnixNano, Message: e.Message, Attrs: e.Attributes})
	}
	b.cycles = append(b.cycles, c)
}

// readProfile reads and summarizes row's file; what goes wrong becomes
// the row's status.
func readProfile(dir string, row *profileRow) {
	if !knownType(row.Type) {
		row.Status = fmt.Sprintf("unknown profile type %q", row.Type)
		return
	}
	if row.File == "" || !filepath.IsLocal(row.File) {
		row.Status = fmt.Sprintf("file name %q is not inside the data folder", row.File)
		return
	}
	data, err := readLimited(filepath.Join(dir, row.File))
	if err != nil {
		row.Status = err.Error()
		return
	}
	row.Bytes = int64(len(data))
	s, err := summarize(row.Type, data)
	if err != nil {
		row.Status = "damaged: " + err.Error()
		return
	}
	row.Summary = s
}

// readLimited reads a file of at most maxFileBytes.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), maxFileBytes)
	}
	return data, nil
}

// scanLocal indexes the profile files of an OutputDir not indexed yet.
func scanLocal(ix *index, src Source, known map[string]bool) (*batch, error) {
	b := &batch{}
	services, err := os.ReadDir(src.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	for _, svc := range services {
		if !svc.IsDir() || strings.HasPrefix(svc.Name(), ".") {
			continue
		}
		if err := scanLocalService(b, src, svc.Name(), known); err != nil {
			return nil, err
		}
		if b.full {
			break
		}
	}
	return b, nil
}

// scanLocalService indexes the new files of one service folder.
func scanLocalService(b *batch, src Source, service string, known map[string]bool) error {
	types, err := os.ReadDir(filepath.Join(src.Dir, service))
	if err != nil {
		return err
	}
	for _, t := range types {
		if !t.IsDir() || strings.HasPrefix(t.Name(), ".") {
			continue
		}
		if t.Name() == "timeline" { // the agent's span files (JSON lines), not profiles
			if err := scanTimelines(b, src, service, known); err != nil || b.full {
				return err
			}
			continue
		}
		rel := filepath.Join(service, t.Name())
		if !knownType(t.Name()) {
			if !known[rel] {
				known[rel] = true
				b.problems = append(b.problems, [4]string{src.Name, service, rel,
					fmt.Sprintf("%s: unknown profile type %q (known: %s)", rel, t.Name(), strings.Join(profileTypes, ", "))})
			}
			continue
		}
		err := eachNewFile(b, src, rel, ".pb.gz", known, func(name string) {
			addLocalFile(b, src, service, t.Name(), name)
		})
		if err != nil || b.full {
			return err
		}
	}
	return nil
}

// eachNewFile calls add with the path (below src.Dir) of each file of the
// folder rel that ends in suffix, is not hidden and is not known yet, and
// marks it known. At scanFiles entries in the batch it stops and marks the
// batch full.
func eachNewFile(b *batch, src Source, rel, suffix string, known map[string]bool, add func(name string)) error {
	files, err := os.ReadDir(filepath.Join(src.Dir, rel))
	if err != nil {
		return err
	}
	for _, f := range files {
		if len(b.profiles)+len(b.timelines)+len(b.problems) >= scanFiles {
			b.full = true
			return nil
		}
		name := filepath.Join(rel, f.Name())
		if f.IsDir() || !strings.HasSuffix(f.Name(), suffix) || strings.HasPrefix(f.Name(), ".") || known[name] {
			continue
		}
		known[name] = true
		add(name)
	}
	return nil
}

// addLocalFile indexes one OutputDir file; a heap file also opens a cycle.
func addLocalFile(b *batch, src Source, service, typ, rel string) {
	start, end, err := parseFileTimes(filepath.Base(rel))
	if err != nil {
		b.problems = append(b.problems, [4]string{src.Name, service, rel, fmt.Sprintf("%s: %v", rel, err)})
		return
	}
	row := profileRow{Source: src.Name, Service: service, Type: typ, StartNS: start, EndNS: end, File: rel}
	readProfile(src.Dir, &row)
	b.profiles = append(b.profiles, row)
	if typ == "heap" {
		b.cycles = append(b.cycles, cycleRow{Source: src.Name, Service: service, Key: rel,
			StartNS: start, EndNS: end, ReceivedNS: end})
	}
}

// parseFileTimes reads <start>_<end>[_...].pb.gz.
func parseFileTimes(name string) (start, end int64, err error) {
	parts := strings.Split(strings.TrimSuffix(name, ".pb.gz"), "_")
	if len(parts) < 2 {
		return 0, 0, errors.New("name is not <start>_<end>.pb.gz")
	}
	t0, err0 := time.Parse(fileTimeLayout, parts[0])
	t1, err1 := time.Parse(fileTimeLayout, strings.SplitN(parts[1], "-", 2)[0])
	if err0 != nil || err1 != nil {
		return 0, 0, errors.New("name is not <start>_<end>.pb.gz with UTC times like 20261129T214117.123Z")
	}
	return t0.UnixNano(), t1.UnixNano(), nil
}
