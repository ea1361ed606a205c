//go:build cgo && linux && go1.26 && !go1.27

package records

import (
	"errors"
	"runtime"
	"strings"
	"unsafe"

	"github.com/pprofio/pprofio/internal/core"
)

// The runtime's helpers that runtime/pprof itself uses to name frames and
// to recover the inlined frames a truncated stack lost (runtime/symtab.go
// pushes them to runtime/pprof; godeltaprof pulls them the same way).

//go:noescape
//go:linkname runtime_FrameStartLine runtime/pprof.runtime_FrameStartLine
func runtime_FrameStartLine(f *runtime.Frame) int

//go:noescape
//go:linkname runtime_FrameSymbolName runtime/pprof.runtime_FrameSymbolName
func runtime_FrameSymbolName(f *runtime.Frame) string

//go:linkname runtime_expandFinalInlineFrame runtime/pprof.runtime_expandFinalInlineFrame
func runtime_expandFinalInlineFrame(stk []uintptr) []uintptr

var (
	errBadELF    = errors.New("malformed ELF binary")
	errNoBuildID = errors.New("ELF binary has no build ID")
)

const (
	lookupTried  uint8 = 1 << 0
	lookupFailed uint8 = 1 << 1
)

// locInfo is a location made once and kept: runtime/pprof's cache of a
// location by its first PC, kept across snapshots instead of per profile.
type locInfo struct {
	id                     uint32
	pcs                    []uintptr
	firstPCFrames          []runtime.Frame
	firstPCSymbolizeResult uint8
}

// symbolizer turns stacks of return PCs into the core's location ids the
// way runtime/pprof's profileBuilder.appendLocsForStack does, sending each
// new string, function, mapping and location to the core once.
type symbolizer struct {
	rec   *core.Records
	b     *budget // counts what the caches keep
	strs  map[string]int64
	funcs map[string]uint32
	locs  map[uintptr]locInfo
	mem   []memMap
	deck  pcDeck
	fns   []uint32 // scratch for a location's lines
	lines []int64
}

func newSymbolizer(b *budget) *symbolizer {
	return &symbolizer{rec: b.rec, b: b, strs: map[string]int64{"": 0}, funcs: map[string]uint32{},
		locs: map[uintptr]locInfo{}}
}

// init sets the core's sample types (type, unit pairs) and period type,
// and reads the mappings.
func (s *symbolizer) init(types []string, periodType, periodUnit string) error {
	ids := make([]int64, 0, len(types)+2)
	for _, v := range append(types, periodType, periodUnit) {
		id, err := s.str(v)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if err := s.rec.Types(ids[:len(types)], ids[len(types)], ids[len(types)+1]); err != nil {
		return err
	}
	return s.addMaps()
}

// str is s's index in the core's strings.
func (s *symbolizer) str(v string) (int64, error) {
	if id, ok := s.strs[v]; ok {
		return id, nil
	}
	id, err := s.rec.String(v)
	if err == nil {
		err = s.b.take(mapEntry(unsafe.Sizeof(v)+8) + int64(len(v)))
	}
	if err == nil {
		s.strs[v] = id
	}
	return id, err
}

// appendLocs is appendLocsForStack (runtime/pprof/proto.go) with the
// location cache kept across snapshots.
func (s *symbolizer) appendLocs(locs []uint32, stk []uintptr) ([]uint32, error) {
	s.deck.reset()
	stk = runtime_expandFinalInlineFrame(stk)
	for len(stk) > 0 {
		addr := stk[0]
		if l, ok := s.locs[addr]; ok {
			if len(s.deck.pcs) > 0 && s.deck.tryAdd(addr, l.firstPCFrames, l.firstPCSymbolizeResult) {
				stk = stk[1:]
				continue
			}
			var err error
			if locs, err = s.flush(locs); err != nil {
				return locs, err
			}
			locs = append(locs, l.id)
			if len(l.pcs) > len(stk) {
				return locs, errors.New("records: a stack too short for its cached location")
			}
			stk = stk[len(l.pcs):]
			continue
		}
		frames, symbolizeResult := allFrames(addr)
		if len(frames) == 0 { // runtime.goexit
			var err error
			if locs, err = s.flush(locs); err != nil {
				return locs, err
			}
			stk = stk[1:]
			continue
		}
		if s.deck.tryAdd(addr, frames, symbolizeResult) {
			stk = stk[1:]
			continue
		}
		var err error
		if locs, err = s.flush(locs); err != nil {
			return locs, err
		}
		if l, ok := s.locs[addr]; ok {
			locs = append(locs, l.id)
			stk = stk[len(l.pcs):]
		} else {
			s.deck.tryAdd(addr, frames, symbolizeResult) // must succeed
			stk = stk[1:]
		}
	}
	return s.flush(locs)
}

// flush appends the deck's location, if it holds one, to locs.
func (s *symbolizer) flush(locs []uint32) ([]uint32, error) {
	id, err := s.emitLocation()
	if err == nil && id > 0 {
		locs = append(locs, id)
	}
	return locs, err
}

// allFrames is runtime/pprof's allFrames: the frames of one return PC.
func allFrames(addr uintptr) ([]runtime.Frame, uint8) {
	frames := runtime.CallersFrames([]uintptr{addr})
	frame, more := frames.Next()
	if frame.Function == "runtime.goexit" {
		return nil, 0
	}
	result := lookupTried
	if frame.PC == 0 || frame.Function == "" || frame.File == "" || frame.Line == 0 {
		result |= lookupFailed
	}
	if frame.PC == 0 {
		frame.PC = addr - 1
	}
	ret := []runtime.Frame{frame}
	for frame.Function != "runtime.goexit" && more {
		frame, more = frames.Next()
		ret = append(ret, frame)
	}
	return ret, result
}

// emitLocation makes the deck's location in the core (0: an empty deck).
func (s *symbolizer) emitLocation() (uint32, error) {
	d := &s.deck
	if len(d.pcs) == 0 {
		return 0, nil
	}
	defer d.reset()
	addr := d.pcs[0]
	s.fns, s.lines = s.fns[:0], s.lines[:0]
	for i := range d.frames {
		fn, err := s.function(&d.frames[i])
		if err != nil {
			return 0, err
		}
		s.fns = append(s.fns, fn)
		s.lines = append(s.lines, int64(d.frames[i].Line))
	}
	mapping, err := s.mapping(addr, d.symbolizeResult)
	if err != nil {
		return 0, err
	}
	id, err := s.rec.Location(uint64(d.frames[0].PC), mapping, s.fns, s.lines)
	if err != nil {
		return 0, err
	}
	l := locInfo{
		id:                     id,
		pcs:                    append([]uintptr{}, d.pcs...),
		firstPCSymbolizeResult: d.firstPCSymbolizeResult,
		firstPCFrames:          append([]runtime.Frame{}, d.frames[:d.firstPCFrames]...),
	}
	if err := s.b.take(mapEntry(unsafe.Sizeof(addr)+unsafe.Sizeof(l)) + int64(cap(l.pcs))*pcSize +
		int64(cap(l.firstPCFrames))*frameSize); err != nil {
		return 0, err
	}
	s.locs[addr] = l
	return id, nil
}

// function is the core's id of the frame's function, by its symbol name.
func (s *symbolizer) function(f *runtime.Frame) (uint32, error) {
	name := runtime_FrameSymbolName(f)
	if id, ok := s.funcs[name]; ok {
		return id, nil
	}
	n, err := s.str(name)
	if err != nil {
		return 0, err
	}
	file, err := s.str(f.File)
	if err != nil {
		return 0, err
	}
	id, err := s.rec.Function(n, file, int64(runtime_FrameStartLine(f)))
	if err == nil {
		err = s.b.take(mapEntry(unsafe.Sizeof(name) + 4))
	}
	if err == nil {
		s.funcs[name] = id
	}
	return id, err
}

// mapping is the id of the mapping holding addr (0: none), read from
// /proc/self/maps again when addr is in none of those known; its
// has_functions follows what its locations' symbolization gave. Those are
// every location made since the table was, where runtime/pprof counts
// those of one profile: the same set, since the runtime never forgets a
// heap, mutex or block bucket (their stacks are in every profile after).
func (s *symbolizer) mapping(addr uintptr, result uint8) (uint32, error) {
	i := s.findMap(addr)
	if i < 0 {
		if err := s.addMaps(); err != nil {
			return 0, err
		}
		if i = s.findMap(addr); i < 0 {
			return 0, nil
		}
	}
	m := &s.mem[i]
	before := m.funcs == lookupTried
	m.funcs |= result
	if after := m.funcs == lookupTried; after != before {
		s.rec.SetHasFunctions(m.id, after)
	}
	return m.id, nil
}

func (s *symbolizer) findMap(addr uintptr) int {
	for i := range s.mem {
		if s.mem[i].start <= addr && addr < s.mem[i].end || s.mem[i].fake {
			return i
		}
	}
	return -1
}

// addMaps adds the mappings not known yet.
func (s *symbolizer) addMaps() error {
	for _, m := range readMaps() {
		known := false
		for i := range s.mem {
			k := &s.mem[i]
			known = known || k.start == m.start && k.end == m.end && k.file == m.file && k.offset == m.offset
		}
		if known || m.fake && len(s.mem) > 0 {
			continue
		}
		file, err := s.str(m.file)
		if err != nil {
			return err
		}
		build, err := s.str(m.buildID)
		if err != nil {
			return err
		}
		if m.id, err = s.rec.Mapping(uint64(m.start), uint64(m.end), m.offset, file, build, false); err != nil {
			return err
		}
		if err := s.b.take(int64(unsafe.Sizeof(m)) + int64(len(m.file)+len(m.buildID))); err != nil {
			return err
		}
		s.mem = append(s.mem, m)
	}
	return nil
}

// isRuntime says whether the function at pc is the runtime's (heap
// stacks hide those frames at their top, as runtime/pprof does).
func isRuntime(pc uintptr) bool {
	f := runtime.FuncForPC(pc)
	return f != nil && (strings.HasPrefix(f.Name(), "runtime.") || strings.HasPrefix(f.Name(), "internal/runtime/"))
}

// pcDeck is runtime/pprof's pcDeck: consecutive PCs of one function's
// inlined calls, gathered into one location.
type pcDeck struct {
	pcs                    []uintptr
	frames                 []runtime.Frame
	symbolizeResult        uint8
	firstPCFrames          int
	firstPCSymbolizeResult uint8
}

func (d *pcDeck) reset() {
	d.pcs, d.frames = d.pcs[:0], d.frames[:0]
	d.symbolizeResult, d.firstPCFrames, d.firstPCSymbolizeResult = 0, 0, 0
}

func (d *pcDeck) tryAdd(pc uintptr, frames []runtime.Frame, symbolizeResult uint8) bool {
	if existing := len(d.frames); existing > 0 {
		newFrame, last := frames[0], d.frames[existing-1]
		if last.Func != nil || last.Entry == 0 || newFrame.Entry == 0 || last.Entry != newFrame.Entry ||
			runtime_FrameSymbolName(&last) == runtime_FrameSymbolName(&newFrame) {
			return false
		}
	}
	d.pcs = append(d.pcs, pc)
	d.frames = append(d.frames, frames...)
	d.symbolizeResult |= symbolizeResult
	if len(d.pcs) == 1 {
		d.firstPCFrames = len(d.frames)
		d.firstPCSymbolizeResult = symbolizeResult
	}
	return true
}
