package spans

import (
	"runtime"
	"time"

	"github.com/pprofio/pprofio/internal/core"
)

// EncodeProfile encodes a cycle's start stacks as the custom profile (the
// pprof format, not gzipped, as UploadRequest.profiles carries it): one
// sample per series and start stack, valued by the number of spans that
// started there and the wall time they spent, labelled span=<name> and
// with the series' tags. `go tool pprof` opens it as a flame graph of where
// span time is spent. The stacks are symbolized here, by the Go runtime:
// the core cannot read Go's symbol tables.
func EncodeProfile(c *core.SpanCycle, start, end time.Time) []byte {
	var e profileEncoder
	e.strings = map[string]int64{"": 0}
	e.stringList = []string{""}
	e.locations = map[uintptr]uint64{}
	e.functions = map[string]uint64{}
	var body []byte
	for _, t := range [][2]string{{"spans", "count"}, {"wall", "nanoseconds"}} {
		body = appendMessage(body, 1, e.valueType(t[0], t[1]))
	}
	for _, st := range c.Stacks {
		if st.Series < 0 || st.Series >= len(c.Series) {
			continue
		}
		body = appendMessage(body, 2, e.sample(st, c.Series[st.Series]))
	}
	body = append(body, e.locBytes...)
	body = append(body, e.funcBytes...)
	for _, s := range e.stringList {
		body = appendBytes(body, 6, []byte(s))
	}
	body = appendVarintField(body, 9, uint64(start.UnixNano()))
	body = appendVarintField(body, 10, uint64(end.Sub(start)))
	body = appendMessage(body, 11, e.valueType("wall", "nanoseconds"))
	return body
}

type profileEncoder struct {
	strings    map[string]int64
	stringList []string
	locations  map[uintptr]uint64
	functions  map[string]uint64
	locBytes   []byte // encoded Location messages (field 4)
	funcBytes  []byte // encoded Function messages (field 5)
}

func (e *profileEncoder) str(s string) int64 {
	if i, ok := e.strings[s]; ok {
		return i
	}
	i := int64(len(e.stringList))
	e.strings[s] = i
	e.stringList = append(e.stringList, s)
	return i
}

func (e *profileEncoder) valueType(typ, unit string) []byte {
	var b []byte
	b = appendVarintField(b, 1, uint64(e.str(typ)))
	return appendVarintField(b, 2, uint64(e.str(unit)))
}

func (e *profileEncoder) sample(st core.SpanStack, sr core.SpanSeries) []byte {
	var ids []uint64
	for _, pc := range st.PCs {
		ids = append(ids, e.location(pc))
	}
	b := appendPacked(nil, 1, ids)
	b = appendPacked(b, 2, []uint64{st.Count, uint64(st.Total)})
	b = appendMessage(b, 3, e.label("span", sr.Name))
	for i := 0; i+1 < len(sr.Tags); i += 2 {
		b = appendMessage(b, 3, e.label(sr.Tags[i], sr.Tags[i+1]))
	}
	return b
}

func (e *profileEncoder) label(k, v string) []byte {
	b := appendVarintField(nil, 1, uint64(e.str(k)))
	return appendVarintField(b, 2, uint64(e.str(v)))
}

// location returns the id of the location of pc (a return address from
// runtime.Callers), with one line per frame inlined there, innermost first.
func (e *profileEncoder) location(pc uintptr) uint64 {
	if id, ok := e.locations[pc]; ok {
		return id
	}
	id := uint64(len(e.locations) + 1)
	e.locations[pc] = id
	b := appendVarintField(nil, 1, id)
	b = appendVarintField(b, 3, uint64(pc))
	frames := runtime.CallersFrames([]uintptr{pc})
	for {
		f, more := frames.Next()
		if f.Function != "" {
			line := appendVarintField(nil, 1, e.function(f))
			line = appendVarintField(line, 2, uint64(f.Line))
			b = appendMessage(b, 4, line)
		}
		if !more {
			break
		}
	}
	e.locBytes = appendMessage(e.locBytes, 4, b)
	return id
}

func (e *profileEncoder) function(f runtime.Frame) uint64 {
	if id, ok := e.functions[f.Function]; ok {
		return id
	}
	id := uint64(len(e.functions) + 1)
	e.functions[f.Function] = id
	b := appendVarintField(nil, 1, id)
	b = appendVarintField(b, 2, uint64(e.str(f.Function)))
	b = appendVarintField(b, 3, uint64(e.str(f.Function)))
	b = appendVarintField(b, 4, uint64(e.str(f.File)))
	e.funcBytes = appendMessage(e.funcBytes, 5, b)
	return id
}

// The protobuf wire format, as much of it as the pprof format needs.

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendVarintField(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendVarint(appendVarint(b, uint64(field)<<3), v)
}

func appendBytes(b []byte, field int, p []byte) []byte {
	b = appendVarint(b, uint64(field)<<3|2)
	return append(appendVarint(b, uint64(len(p))), p...)
}

func appendMessage(b []byte, field int, msg []byte) []byte { return appendBytes(b, field, msg) }

func appendPacked(b []byte, field int, vs []uint64) []byte {
	var p []byte
	for _, v := range vs {
		p = appendVarint(p, v)
	}
	return appendBytes(b, field, p)
}
