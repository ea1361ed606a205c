package receiver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
	"google.golang.org/protobuf/proto"
)

// BatchesFile is the name, inside the data folder, of the JSON-lines log
// of accepted batches.
const BatchesFile = "batches.jsonl"

// SpansFolder is the folder, beside a service's profile types, that holds
// the spans of its batches.
const SpansFolder = "spans"

// fileTimeLayout formats profile windows in file names, e.g. 20261129T214117.123Z.
const fileTimeLayout = "20060102T150405.000Z"

// errDuplicate reports a batch_id that was accepted before.
var errDuplicate = errors.New("batch already accepted")

// store keeps accepted batches on disk and remembers their batch_ids and
// how many batches each sequence of each instance had, including those
// found in BatchesFile from earlier runs.
type store struct {
	dir   string
	mu    sync.Mutex
	seen  map[string]bool
	parts map[string]int // by seqKey
	stats Stats
}

// seqKey names one sequence number of one agent instance.
func seqKey(instanceID string, sequence uint64) string {
	return fmt.Sprintf("%s/%d", instanceID, sequence)
}

// openStore creates the data folder if needed and loads the batch_ids
// already accepted into it.
func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st := &store{dir: dir, seen: make(map[string]bool), parts: make(map[string]int)}
	if err := st.load(filepath.Join(dir, BatchesFile)); err != nil {
		return nil, err
	}
	return st, nil
}

// load reads the batch_ids and sequences of a batches file; a missing file
// is empty and reading stops quietly at a damaged line.
func (st *store) load(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for {
		var e struct {
			BatchID  string `json:"batch_id"`
			Sequence uint64 `json:"sequence"`
			Source   struct {
				InstanceID string `json:"instance_id"`
			} `json:"source"`
		}
		if err := dec.Decode(&e); err != nil {
			return nil
		}
		st.seen[e.BatchID] = true
		st.parts[seqKey(e.Source.InstanceID, e.Sequence)]++
	}
}

// accept stores every profile of req and appends its line to BatchesFile.
// It returns errDuplicate for a batch_id accepted before. A new batch_id
// with a sequence already seen from the instance is a further part of a
// batch split after a 413 (API.md), not a duplicate: its entry's Part
// counts the parts. On failure nothing of the batch is left behind but
// what was already appended.
func (st *store) accept(req *ingestpb.UploadRequest, received time.Time) (*batchEntry, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.seen[req.GetBatchId()] {
		st.stats.Duplicates++
		return nil, errDuplicate
	}
	key := seqKey(req.GetSource().GetInstanceId(), req.GetSequence())
	entry := newBatchEntry(req, received)
	entry.Part = st.parts[key] + 1
	if err := st.writeProfiles(req, entry); err != nil {
		return nil, err
	}
	if err := st.writeSpans(req, entry); err != nil {
		st.removeFiles(entry)
		return nil, err
	}
	if err := st.appendBatch(entry); err != nil {
		st.removeFiles(entry)
		return nil, err
	}
	st.seen[req.GetBatchId()] = true
	st.parts[key] = entry.Part
	if entry.Part == 1 {
		st.stats.Batches++
	} else {
		st.stats.Parts++
	}
	return entry, nil
}

// writeProfiles writes each profile of req as a gzip file and notes its
// path (relative to the data folder) in entry.
func (st *store) writeProfiles(req *ingestpb.UploadRequest, entry *batchEntry) error {
	service := safeName(req.GetSource().GetService())
	for i, p := range req.GetProfiles() {
		rel, err := st.writeProfile(service, req.GetBatchId(), p)
		if err != nil {
			st.removeFiles(entry)
			return fmt.Errorf("profile %d: %w", i, err)
		}
		entry.Profiles[i].File = rel
	}
	return nil
}

// writeProfile writes one profile as <service>/<type>/<start>_<end>_<id8>.pb.gz.
func (st *store) writeProfile(service, batchID string, p *ingestpb.Profile) (string, error) {
	dir := filepath.Join(service, typeName(p.GetType()))
	if err := os.MkdirAll(filepath.Join(st.dir, dir), 0o700); err != nil {
		return "", err
	}
	data, err := gzipBytes(p.GetPprof())
	if err != nil {
		return "", err
	}
	base := fmt.Sprintf("%s_%s_%s", fileTime(p.GetStartUnixNano()), fileTime(p.GetEndUnixNano()), batchID[:8])
	rel := st.freeName(dir, base)
	return rel, writeFileAtomic(filepath.Join(st.dir, rel), data)
}

// writeSpans writes the batch's spans, if any, as
// <service>/spans/<start>_<end>_<id8>.pb.gz: a gzipped UploadRequest that
// carries only the batch_id, sequence, source and spans.
func (st *store) writeSpans(req *ingestpb.UploadRequest, entry *batchEntry) error {
	spans := req.GetSpans()
	if len(spans) == 0 {
		return nil
	}
	first, last := spans[0].GetStartUnixNano(), spans[0].GetStartUnixNano()
	for _, s := range spans {
		first = min(first, s.GetStartUnixNano())
		last = max(last, s.GetStartUnixNano()+s.GetDurationNanos())
	}
	raw, err := proto.Marshal(&ingestpb.UploadRequest{BatchId: req.GetBatchId(), Sequence: req.GetSequence(),
		Source: req.GetSource(), Spans: spans})
	if err != nil {
		return err
	}
	dir := filepath.Join(safeName(req.GetSource().GetService()), SpansFolder)
	if err := os.MkdirAll(filepath.Join(st.dir, dir), 0o700); err != nil {
		return err
	}
	data, err := gzipBytes(raw)
	if err != nil {
		return err
	}
	rel := st.freeName(dir, fmt.Sprintf("%s_%s_%s", fileTime(first), fileTime(last), req.GetBatchId()[:8]))
	if err := writeFileAtomic(filepath.Join(st.dir, rel), data); err != nil {
		return fmt.Errorf("spans: %w", err)
	}
	entry.SpansFile = rel
	return nil
}

// freeName returns dir/base.pb.gz, or dir/base-N.pb.gz when that is taken
// (two profiles of one type and window in one batch).
func (st *store) freeName(dir, base string) string {
	rel := filepath.Join(dir, base+".pb.gz")
	for n := 2; ; n++ {
		if _, err := os.Lstat(filepath.Join(st.dir, rel)); errors.Is(err, os.ErrNotExist) {
			return rel
		}
		rel = filepath.Join(dir, fmt.Sprintf("%s-%d.pb.gz", base, n))
	}
}

// removeFiles deletes the profile files already written for entry.
func (st *store) removeFiles(entry *batchEntry) {
	for _, p := range entry.Profiles {
		if p.File != "" {
			_ = os.Remove(filepath.Join(st.dir, p.File))
		}
	}
	if entry.SpansFile != "" {
		_ = os.Remove(filepath.Join(st.dir, entry.SpansFile))
	}
}

// appendBatch appends entry as one JSON line to BatchesFile.
func (st *store) appendBatch(entry *batchEntry) error {
	line, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(st.dir, BatchesFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fileTime formats Unix nanoseconds for a file name, in UTC.
func fileTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(fileTimeLayout)
}

// safeName turns a service name into one folder name: characters other
// than letters, digits, '.', '-' and '_' become '_', and names that would
// escape or hide ("", ".", "..", ".x") get a leading '_'.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	name := b.String()
	if name == "" || strings.HasPrefix(name, ".") {
		name = "_" + name
	}
	return name
}

// gzipBytes compresses data.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same folder and a rename, so readers never see a partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := writeAndClose(tmp, data); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeAndClose writes data to f and closes it, reporting the first error.
func writeAndClose(f io.WriteCloser, data []byte) error {
	_, err := f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
