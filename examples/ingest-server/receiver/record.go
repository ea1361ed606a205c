package receiver

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// recordedHeaders are the request headers a Record keeps, exactly as received.
var recordedHeaders = []string{
	"Authorization", "Content-Type", "Content-Encoding", "Idempotency-Key", "User-Agent",
}

// Record is one line of the request record: what arrived and what the
// server answered. Status 0 means no answer was sent (reset, hang).
type Record struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
	// Action is the script item applied, or "ok".
	Action string `json:"action"`
	// Reason is the short text of a refusal, empty when accepted.
	Reason string `json:"reason,omitempty"`
	// Headers holds those of recordedHeaders that were present.
	Headers   map[string]string `json:"headers"`
	WireBytes int64             `json:"wire_bytes"`
	BodyBytes int64             `json:"body_bytes"`
	// Decoded is true when the body decoded as an UploadRequest; the
	// fields after it are set only then.
	Decoded  bool   `json:"decoded"`
	BatchID  string `json:"batch_id,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
	// Part is set when the batch is accepted: 2 and up for the further
	// parts of a batch split after a 413 (see batchEntry.Part).
	Part         int      `json:"part,omitempty"`
	Profiles     int      `json:"profiles"`
	ProfileTypes []string `json:"profile_types,omitempty"`
	EventKinds   []string `json:"event_kinds,omitempty"`
	Service      string   `json:"service,omitempty"`
	InstanceID   string   `json:"instance_id,omitempty"`
}

// newRecord starts the record of a request.
func newRecord(r *http.Request, now time.Time) Record {
	rec := Record{
		Time:    now.UTC(),
		Method:  r.Method,
		Path:    r.URL.Path,
		Action:  "ok",
		Headers: make(map[string]string),
	}
	for _, h := range recordedHeaders {
		if v, ok := r.Header[h]; ok && len(v) > 0 {
			rec.Headers[h] = v[0]
		}
	}
	return rec
}

// noteUpload copies what the record keeps of a decoded upload.
func (rec *Record) noteUpload(req *ingestpb.UploadRequest) {
	rec.Decoded = true
	rec.BatchID = req.GetBatchId()
	rec.Sequence = req.GetSequence()
	rec.Profiles = len(req.GetProfiles())
	for _, p := range req.GetProfiles() {
		rec.ProfileTypes = append(rec.ProfileTypes, typeName(p.GetType()))
	}
	for _, e := range req.GetEvents() {
		rec.EventKinds = append(rec.EventKinds, e.GetKind())
	}
	rec.Service = req.GetSource().GetService()
	rec.InstanceID = req.GetSource().GetInstanceId()
}

// Recorder appends Records to a writer as JSON lines, one Write call per
// line, under a mutex, so a reader sees whole lines while the server runs.
type Recorder struct {
	mu sync.Mutex
	w  io.Writer
}

// NewRecorder returns a Recorder writing to w. Give it an unbuffered
// writer (such as an *os.File opened with O_APPEND) so that each line is
// visible as soon as it is written.
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{w: w}
}

// Write appends one record.
func (rc *Recorder) Write(rec Record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	rc.mu.Lock()
	defer rc.mu.Unlock()
	_, err = rc.w.Write(line)
	return err
}
