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
	h := b[at : at+header]
	binary.NativeEndian.PutUint32(h[0:], uint32(len(b)-at))
	binary.NativeEndian.PutUint16(h[4:], uint16(nameLen))
	binary.NativeEndian.PutUint16(h[6:], uint16(tagsLen))
	binary.NativeEndian.PutUint32(h[8:], uint32(len(pcs)))
	binary.NativeEndian.PutUint32(h[12:], 0)
	binary.NativeEndian.PutUint64(h[16:], uint64(start))
	binary.NativeEndian.PutUint64(h[24:], uint64(dur))
	binary.NativeEndian.PutUint64(h[32:], id)
	binary.NativeEndian.PutUint64(h[40:], parent)
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
