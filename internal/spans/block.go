package spans

import (
	"encoding/binary"
	"strings"
)

// The limits of csrc/spans.h; what is longer is cut here already, so that
// every length fits the record header.
const (
	MaxName = 256
	MaxTags = 2048 // bytes of "key\x00value\x00" pairs
	MaxPCs  = 64
	header  = 48
)

// Text is a span's name and tags as a record carries them: made once per
// name and tag set (EncodeText) and copied into every record of it.
type Text struct {
	b                []byte // name, then tags, NUL-free, zero padding to 8
	nameLen, tagsLen uint16
}

// EncodeText cuts name and tags at the core's limits and lays them out as a
// record carries them. tags are key, value pairs in the order they should
// be compared in (sorted by key); NUL bytes are left out.
func EncodeText(name string, tags []string) Text {
	if len(name) > MaxName {
		name = name[:MaxName]
	}
	b := appendText(nil, name)
	nameLen := len(b)
	for i := 0; i+1 < len(tags); i += 2 {
		mark := len(b)
		b = appendText(b, tags[i])
		b = append(b, 0)
		b = appendText(b, tags[i+1])
		b = append(b, 0)
		if len(b)-nameLen > MaxTags {
			b = b[:mark]
			break
		}
	}
	tagsLen := len(b) - nameLen
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return Text{b: b, nameLen: uint16(nameLen), tagsLen: uint16(tagsLen)}
}

// AppendRecord appends one finished span to b in the block layout of
// csrc/spans.h (pprofio_spans_record_block). tags are key, value pairs in
// the order they should be compared in (sorted by key); NUL bytes in names
// and tags are left out.
func AppendRecord(b []byte, name string, tags []string, start, dur int64, id, parent uint64, pcs []uintptr) []byte {
	if len(name) > MaxName {
		name = name[:MaxName]
	}
	if len(pcs) > MaxPCs {
		pcs = pcs[:MaxPCs]
	}
	at := len(b)
	b = append(b, make([]byte, header)...)
	b = appendText(b, name)
	nameLen := len(b) - at - header
	for i := 0; i+1 < len(tags); i += 2 {
		mark := len(b)
		b = appendText(b, tags[i])
		b = append(b, 0)
		b = appendText(b, tags[i+1])
		b = append(b, 0)
		if len(b)-at-header-nameLen > MaxTags {
			b = b[:mark]
			break
		}
	}
	tagsLen := len(b) - at - header - nameLen
	for (len(b)-at)%8 != 0 {
		b = append(b, 0)
	}
	for _, pc := range pcs {
		b = binary.NativeEndian.AppendUint64(b, uint64(pc))
	}
	putHeader(b[at:at+header], len(b)-at, nameLen, tagsLen, len(pcs), start, dur, id, parent)
	return b
}

// putHeader writes a record's header (the layout of csrc/spans.h).
func putHeader(h []byte, n, nameLen, tagsLen, nPCs int, start, dur int64, id, parent uint64) {
	binary.NativeEndian.PutUint32(h[0:], uint32(n))
	binary.NativeEndian.PutUint16(h[4:], uint16(nameLen))
	binary.NativeEndian.PutUint16(h[6:], uint16(tagsLen))
	binary.NativeEndian.PutUint32(h[8:], uint32(nPCs))
	binary.NativeEndian.PutUint32(h[12:], 0)
	binary.NativeEndian.PutUint64(h[16:], uint64(start))
	binary.NativeEndian.PutUint64(h[24:], uint64(dur))
	binary.NativeEndian.PutUint64(h[32:], id)
	binary.NativeEndian.PutUint64(h[40:], parent)
}

// AppendText is AppendRecord with the name and tags already laid out.
func AppendText(b []byte, t *Text, start, dur int64, id, parent uint64, pcs []uintptr) []byte {
	if len(pcs) > MaxPCs {
		pcs = pcs[:MaxPCs]
	}
	n := header + len(t.b) + 8*len(pcs)
	at := len(b)
	if cap(b)-at < n {
		b = append(b[:cap(b)], make([]byte, at+n-cap(b))...)
	}
	b = b[:at+n]
	putHeader(b[at:at+header], n, int(t.nameLen), int(t.tagsLen), len(pcs), start, dur, id, parent)
	p := b[at+header+copy(b[at+header:], t.b):]
	for i, pc := range pcs {
		binary.NativeEndian.PutUint64(p[8*i:], uint64(pc))
	}
	return b
}

// appendText appends s without its NUL bytes.
func appendText(b []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		s = s[i+1:]
	}
}

// EncodeTags appends tags as the core's "key\x00value\x00" blob (the direct,
// one-call-per-span path).
func EncodeTags(b []byte, tags []string) []byte {
	for i := 0; i+1 < len(tags); i += 2 {
		mark := len(b)
		b = append(appendText(b, tags[i]), 0)
		b = append(appendText(b, tags[i+1]), 0)
		if len(b) > MaxTags {
			return b[:mark]
		}
	}
	return b
}
