package receiver

import (
	"net/http"
	"time"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// typeNames maps profile types to the folder names of the data layout.
var typeNames = map[ingestpb.ProfileType]string{
	ingestpb.ProfileType_PROFILE_TYPE_CPU:       "cpu",
	ingestpb.ProfileType_PROFILE_TYPE_HEAP:      "heap",
	ingestpb.ProfileType_PROFILE_TYPE_GOROUTINE: "goroutine",
	ingestpb.ProfileType_PROFILE_TYPE_MUTEX:     "mutex",
	ingestpb.ProfileType_PROFILE_TYPE_BLOCK:     "block",
	ingestpb.ProfileType_PROFILE_TYPE_CUSTOM:    "custom",
}

// typeName returns the folder name of t, or "unspecified" for a type that
// has none (such profiles are refused before they are stored).
func typeName(t ingestpb.ProfileType) string {
	if name, ok := typeNames[t]; ok {
		return name
	}
	return "unspecified"
}

// isBatchID reports whether s is 32 lowercase hex characters.
func isBatchID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validate checks what the contract asks of an upload beyond decoding: a
// well-formed batch_id equal to the Idempotency-Key, and profiles that
// can be stored.
func validate(req *ingestpb.UploadRequest, idempotencyKey string) error {
	id := req.GetBatchId()
	if !isBatchID(id) {
		return reject(http.StatusBadRequest, "batch_id %.40q is not 32 lowercase hex characters", id)
	}
	if idempotencyKey != id {
		return reject(http.StatusBadRequest, "Idempotency-Key %.40q does not match batch_id %q", idempotencyKey, id)
	}
	for i, p := range req.GetProfiles() {
		if _, ok := typeNames[p.GetType()]; !ok {
			return reject(http.StatusBadRequest, "profile %d: type %v is not one of cpu, heap, goroutine, mutex, block, custom", i, p.GetType())
		}
		if len(p.GetPprof()) == 0 {
			return reject(http.StatusBadRequest, "profile %d: empty pprof", i)
		}
	}
	return nil
}

// batchEntry is one line of BatchesFile: an accepted batch.
type batchEntry struct {
	BatchID  string `json:"batch_id"`
	Sequence uint64 `json:"sequence"`
	// Part is 1 for the first batch of its instance and sequence, and
	// counts on for the further parts of a batch split after a 413.
	Part     int            `json:"part"`
	Received time.Time      `json:"received"`
	Source   sourceEntry    `json:"source"`
	Profiles []profileEntry `json:"profiles"`
	Events   []eventEntry   `json:"events"`
	Spans    int            `json:"spans"`
	// SpansFile holds the batch's spans (relative to the data folder), if any.
	SpansFile string `json:"spans_file,omitempty"`
}

type sourceEntry struct {
	Service              string            `json:"service"`
	InstanceID           string            `json:"instance_id"`
	Hostname             string            `json:"hostname"`
	PID                  int64             `json:"pid"`
	AgentVersion         string            `json:"agent_version"`
	RuntimeVersion       string            `json:"runtime_version"`
	OS                   string            `json:"os"`
	Arch                 string            `json:"arch"`
	Tags                 map[string]string `json:"tags"`
	ProcessStartUnixNano int64             `json:"process_start_unix_nano"`
}

type profileEntry struct {
	Type          string    `json:"type"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	StartUnixNano int64     `json:"start_unix_nano"`
	EndUnixNano   int64     `json:"end_unix_nano"`
	Bytes         int       `json:"bytes"`
	Delta         bool      `json:"delta"`
	// File is the stored file, relative to the data folder.
	File string `json:"file"`
}

type eventEntry struct {
	Kind         string            `json:"kind"`
	Time         time.Time         `json:"time"`
	TimeUnixNano int64             `json:"time_unix_nano"`
	Message      string            `json:"message"`
	Attributes   map[string]string `json:"attributes"`
}

// newBatchEntry describes req, received at the given time; the profiles'
// File fields are filled in as they are written.
func newBatchEntry(req *ingestpb.UploadRequest, received time.Time) *batchEntry {
	return &batchEntry{
		BatchID:  req.GetBatchId(),
		Sequence: req.GetSequence(),
		Received: received.UTC(),
		Source:   newSourceEntry(req.GetSource()),
		Profiles: newProfileEntries(req.GetProfiles()),
		Events:   newEventEntries(req.GetEvents()),
		Spans:    len(req.GetSpans()),
	}
}

func newSourceEntry(s *ingestpb.Source) sourceEntry {
	return sourceEntry{
		Service:              s.GetService(),
		InstanceID:           s.GetInstanceId(),
		Hostname:             s.GetHostname(),
		PID:                  s.GetPid(),
		AgentVersion:         s.GetAgentVersion(),
		RuntimeVersion:       s.GetRuntimeVersion(),
		OS:                   s.GetOs(),
		Arch:                 s.GetArch(),
		Tags:                 s.GetTags(),
		ProcessStartUnixNano: s.GetProcessStartUnixNano(),
	}
}

func newProfileEntries(ps []*ingestpb.Profile) []profileEntry {
	out := make([]profileEntry, 0, len(ps))
	for _, p := range ps {
		out = append(out, profileEntry{
			Type:          typeName(p.GetType()),
			Start:         unixNano(p.GetStartUnixNano()),
			End:           unixNano(p.GetEndUnixNano()),
			StartUnixNano: p.GetStartUnixNano(),
			EndUnixNano:   p.GetEndUnixNano(),
			Bytes:         len(p.GetPprof()),
			Delta:         p.GetDelta(),
		})
	}
	return out
}

func newEventEntries(es []*ingestpb.Event) []eventEntry {
	out := make([]eventEntry, 0, len(es))
	for _, e := range es {
		out = append(out, eventEntry{
			Kind:         e.GetKind(),
			Time:         unixNano(e.GetTimeUnixNano()),
			TimeUnixNano: e.GetTimeUnixNano(),
			Message:      e.GetMessage(),
			Attributes:   e.GetAttributes(),
		})
	}
	return out
}

// unixNano converts Unix nanoseconds to a UTC time.
func unixNano(ns int64) time.Time {
	return time.Unix(0, ns).UTC()
}
