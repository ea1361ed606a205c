//go:build cgo && linux && go1.26 && !go1.27

package records

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A memMap is an executable mapping of /proc/self/maps, as runtime/pprof
// lists them in every profile (proto.go, parseProcSelfMaps).
type memMap struct {
	start, end uintptr
	offset     uint64
	file       string
	buildID    string
	fake       bool  // no mapping could be read: one that takes every address
	funcs      uint8 // symbolize flags of its locations so far
	id         uint32
}

// readMaps returns the executable mappings of the process, in the order
// and with the fields runtime/pprof gives them.
func readMaps() []memMap {
	data, _ := os.ReadFile("/proc/self/maps")
	var mem []memMap
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if m, ok := parseMapsLine(line); ok {
			m.buildID, _ = elfBuildID(m.file)
			mem = append(mem, m)
		}
	}
	if len(mem) == 0 {
		mem = append(mem, memMap{fake: true})
	}
	return mem
}

// parseMapsLine reads one line of /proc/self/maps the way runtime/pprof does.
func parseMapsLine(line []byte) (memMap, bool) {
	next := func() []byte {
		var f []byte
		f, line, _ = bytes.Cut(line, []byte(" "))
		line = bytes.TrimLeft(line, " ")
		return f
	}
	lo, hi, ok := strings.Cut(string(next()), "-")
	if !ok {
		return memMap{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	perm := next()
	if err1 != nil || err2 != nil || len(perm) < 4 || perm[2] != 'x' {
		return memMap{}, false
	}
	offset, err := strconv.ParseUint(string(next()), 16, 64)
	if err != nil {
		return memMap{}, false
	}
	next() // dev
	inode := next()
	if line == nil {
		return memMap{}, false
	}
	file := strings.TrimSuffix(string(line), " (deleted)")
	if len(inode) == 1 && inode[0] == '0' && file == "" {
		return memMap{}, false
	}
	return memMap{start: uintptr(start), end: uintptr(end), offset: offset, file: file}, true
}

// elfBuildID is the GNU build ID of an ELF file, as runtime/pprof reads it (elf.go).
func elfBuildID(file string) (string, error) {
	buf := make([]byte, 256)
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.ReadAt(buf[:64], 0); err != nil {
		return "", err
	}
	if buf[0] != 0x7F || buf[1] != 'E' || buf[2] != 'L' || buf[3] != 'F' {
		return "", errBadELF
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch buf[5] {
	case 1:
	case 2:
		bo = binary.BigEndian
	default:
		return "", errBadELF
	}
	var shnum int
	var shoff, shentsize int64
	switch buf[4] {
	case 1:
		shoff, shentsize, shnum = int64(bo.Uint32(buf[32:])), int64(bo.Uint16(buf[46:])), int(bo.Uint16(buf[48:]))
		if shentsize != 40 {
			return "", errBadELF
		}
	case 2:
		shoff, shentsize, shnum = int64(bo.Uint64(buf[40:])), int64(bo.Uint16(buf[58:])), int(bo.Uint16(buf[60:]))
		if shentsize != 64 {
			return "", errBadELF
		}
	default:
		return "", errBadELF
	}
	for i := 0; i < shnum; i++ {
		if _, err := f.ReadAt(buf[:shentsize], shoff+int64(i)*shentsize); err != nil {
			return "", err
		}
		if bo.Uint32(buf[4:]) != 7 { // SHT_NOTE
			continue
		}
		var off, size int64
		if shentsize == 40 {
			off, size = int64(bo.Uint32(buf[16:])), int64(bo.Uint32(buf[20:]))
		} else {
			off, size = int64(bo.Uint64(buf[24:])), int64(bo.Uint64(buf[32:]))
		}
		if id, found, err := noteBuildID(f, buf, bo, off, off+size); found || err != nil {
			return id, err
		}
	}
	return "", errNoBuildID
}

// noteBuildID looks for the NT_GNU_BUILD_ID note in [off, end) of f.
func noteBuildID(f *os.File, buf []byte, bo binary.ByteOrder, off, end int64) (string, bool, error) {
	for off < end {
		if _, err := f.ReadAt(buf[:16], off); err != nil {
			return "", false, err
		}
		nameSize, descSize, noteType := int(bo.Uint32(buf[0:])), int(bo.Uint32(buf[4:])), int(bo.Uint32(buf[8:]))
		descOff := off + int64(12+(nameSize+3)&^3)
		off = descOff + int64((descSize+3)&^3)
		if nameSize != 4 || noteType != 3 || string(buf[12:16]) != "GNU\x00" {
			continue
		}
		if descSize > len(buf) {
			return "", false, errBadELF
		}
		if _, err := f.ReadAt(buf[:descSize], descOff); err != nil {
			return "", false, err
		}
		return fmt.Sprintf("%x", buf[:descSize]), true, nil
	}
	return "", false, nil
}
