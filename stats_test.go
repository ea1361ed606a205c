//go:build cgo

package pprofio

import (
	"reflect"
	"testing"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

// fromSpanRecorder are the Stats fields the span recorder (spans.h), not
// pprofio_stats, fills; stats() copies them one by one.
var fromSpanRecorder = map[string]bool{
	"SpansRecorded": true, "SpansSampled": true, "SpansDropped": true, "SpansOverflowed": true,
}

// Stats is declared once in C (include/pprofio.h) and once here, and the
// binding copies it by name: every field must have its twin, of the same
// signedness, or a counter would silently read zero.
func TestStatsFieldsAgreeWithTheCore(t *testing.T) {
	cFields := map[string]core.StatField{}
	for _, f := range core.StatsFields() {
		cFields[f.Name] = f
	}
	if len(cFields) == 0 {
		t.Fatal("the core lists no stats fields")
	}
	goType := reflect.TypeOf(Stats{})
	seen := map[string]bool{}
	for i := 0; i < goType.NumField(); i++ {
		f := goType.Field(i)
		if fromSpanRecorder[f.Name] {
			continue
		}
		name := core.CName(f)
		cf, ok := cFields[name]
		if !ok {
			t.Errorf("Stats.%s has no pprofio_stats.%s in include/pprofio.h", f.Name, name)
			continue
		}
		seen[name] = true
		k := f.Type.Kind()
		signed := k == reflect.Int64 || k == reflect.Bool // a bool is a 0/1 gauge in C
		if k != reflect.Int64 && k != reflect.Uint64 && k != reflect.Bool {
			t.Errorf("Stats.%s is a %v; only uint64, int64, time.Duration and bool mirror C", f.Name, f.Type)
		}
		if signed != cf.Signed {
			t.Errorf("Stats.%s is %v but pprofio_stats.%s is signed=%v", f.Name, f.Type, name, cf.Signed)
		}
	}
	for name := range cFields {
		if !seen[name] {
			t.Errorf("pprofio_stats.%s has no field in pprofio.Stats", name)
		}
	}
}

func TestCNameIsTheSnakeCaseOfTheGoName(t *testing.T) {
	type sample struct {
		ProfilesDroppedNoSink uint64
		CPUOutput             time.Duration
		BufferedBytesPeak     int64
	}
	want := []string{"profiles_dropped_no_sink", "cpu_output_ns", "buffered_bytes_peak"}
	st := reflect.TypeOf(sample{})
	for i, w := range want {
		if got := core.CName(st.Field(i)); got != w {
			t.Errorf("CName(%s) = %q, want %q", st.Field(i).Name, got, w)
		}
	}
}
