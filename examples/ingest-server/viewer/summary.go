package viewer

// What the index keeps of one profile: its totals, the functions its value
// is attributed to, and its pprof labels. Computed once, when the file is
// first seen, so that charts over a week never open the files again.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// topFuncs is how many functions of a profile the index keeps; the rest
// are summed into otherFunc.
const topFuncs = 12

// otherFunc names the sum of the functions past topFuncs.
const otherFunc = "(other)"

// profileTypes are the types of the data layout, in page order.
var profileTypes = []string{"cpu", "heap", "goroutine", "mutex", "block"}

// knownType reports whether t is one of the layout's profile types.
func knownType(t string) bool {
	for _, k := range profileTypes {
		if k == t {
			return true
		}
	}
	return t == "custom"
}

// funcValue is a function and the value attributed to it: V0 the type's
// main value (CPU time, bytes allocated, goroutines, delay), V1 the second
// (samples, objects, contentions).
type funcValue struct {
	Name   string
	V0, V1 int64
}

// summary is what the index keeps of one profile.
type summary struct {
	SampleTypes []string // "type/unit" in the profile's order
	Totals      []int64  // sum of each sample type over all samples
	Funcs       []funcValue
	Labels      [][2]string
	Spans       []spanStatRow // a custom profile's span timings (spanAggregates)
}

// mainValues gives, per profile type, the sample types of V0 and V1.
var mainValues = map[string][2]string{
	"cpu":       {"cpu", "samples"},
	"heap":      {"alloc_space", "alloc_objects"},
	"goroutine": {"goroutine", "goroutine"},
	"mutex":     {"delay", "contentions"},
	"block":     {"delay", "contentions"},
}

// summarize parses a profile (gzipped or not) and computes its summary.
func summarize(typ string, data []byte) (*summary, error) {
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("not a pprof profile: %v", err)
	}
	s := &summary{}
	for _, st := range p.SampleType {
		s.SampleTypes = append(s.SampleTypes, st.Type+"/"+st.Unit)
	}
	s.Totals = make([]int64, len(p.SampleType))
	for _, smp := range p.Sample {
		for i, v := range smp.Value {
			if i < len(s.Totals) {
				s.Totals[i] += v
			}
		}
	}
	s.Funcs = attribute(typ, p)
	s.Labels = labelsOf(p)
	if typ == "custom" {
		s.Spans = spanAggregates(p)
	}
	return s, nil
}

// sampleIndex returns the index of the sample type named name, or -1.
func sampleIndex(p *profile.Profile, name string) int {
	for i, st := range p.SampleType {
		if st.Type == name {
			return i
		}
	}
	return -1
}

// attribute sums each sample's main values onto one function (see
// attributedFunc) and keeps the topFuncs largest.
func attribute(typ string, p *profile.Profile) []funcValue {
	names, ok := mainValues[typ]
	if !ok {
		return nil
	}
	i0, i1 := sampleIndex(p, names[0]), sampleIndex(p, names[1])
	if i0 < 0 {
		i0 = len(p.SampleType) - 1
	}
	if i1 < 0 {
		i1 = i0
	}
	if i0 < 0 {
		return nil
	}
	sums := make(map[string]*funcValue)
	for _, smp := range p.Sample {
		if i0 >= len(smp.Value) || i1 >= len(smp.Value) {
			continue
		}
		name := attributedFunc(typ, smp)
		fv := sums[name]
		if fv == nil {
			fv = &funcValue{Name: name}
			sums[name] = fv
		}
		fv.V0 += smp.Value[i0]
		fv.V1 += smp.Value[i1]
	}
	return topOf(sums)
}

// topOf sorts the functions by V0 (then name) and folds those past
// topFuncs into otherFunc.
func topOf(sums map[string]*funcValue) []funcValue {
	all := make([]funcValue, 0, len(sums))
	for _, fv := range sums {
		all = append(all, *fv)
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].V0 != all[b].V0 {
			return all[a].V0 > all[b].V0
		}
		return all[a].Name < all[b].Name
	})
	if len(all) <= topFuncs {
		return all
	}
	other := funcValue{Name: otherFunc}
	for _, fv := range all[topFuncs:] {
		other.V0 += fv.V0
		other.V1 += fv.V1
	}
	return append(all[:topFuncs], other)
}

// frames lists a sample's function names, leaf first.
func frames(smp *profile.Sample) []string {
	var out []string
	for _, loc := range smp.Location {
		for _, ln := range loc.Line {
			if ln.Function != nil {
				out = append(out, ln.Function.Name)
			}
		}
	}
	return out
}

// attributedFunc names the function a sample is charged to: for CPU and
// heap the leaf (outside the runtime); for a goroutine its entry function
// (what leaks, leaks by the goroutine it started as); for mutex and block
// the first caller outside the runtime and package sync.
func attributedFunc(typ string, smp *profile.Sample) string {
	fs := frames(smp)
	if len(fs) == 0 {
		return "(unknown)"
	}
	switch typ {
	case "goroutine":
		for i := len(fs) - 1; i >= 0; i-- {
			if !strings.HasPrefix(fs[i], "runtime.") {
				return fs[i]
			}
		}
	case "mutex", "block":
		for _, f := range fs {
			if !strings.HasPrefix(f, "runtime.") && !strings.HasPrefix(f, "sync.") && !strings.HasPrefix(f, "internal/") {
				return f
			}
		}
	case "cpu":
		return fs[0]
	default:
		for _, f := range fs {
			if !strings.HasPrefix(f, "runtime.") {
				return f
			}
		}
	}
	return fs[0]
}

// labelsOf lists the distinct string labels of a profile's samples.
func labelsOf(p *profile.Profile) [][2]string {
	seen := make(map[[2]string]bool)
	for _, smp := range p.Sample {
		for k, vs := range smp.Label {
			for _, v := range vs {
				seen[[2]string{k, v}] = true
			}
		}
	}
	out := make([][2]string, 0, len(seen))
	for kv := range seen {
		out = append(out, kv)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a][0] != out[b][0] {
			return out[a][0] < out[b][0]
		}
		return out[a][1] < out[b][1]
	})
	return out
}
