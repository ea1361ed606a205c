package receiver

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
)

// drainLimit bounds how much of an unwanted request body is read and thrown
// away before answering, so that a client still sending gets the answer
// rather than a reset, without the server reading without end.
const drainLimit = 64 << 20

// rejection is a refusal: the status to answer and a short reason.
type rejection struct {
	status int
	reason string
}

func (r *rejection) Error() string { return r.reason }

// reject builds a rejection with a formatted reason.
func reject(status int, format string, args ...any) *rejection {
	return &rejection{status: status, reason: fmt.Sprintf(format, args...)}
}

// readWire reads the request body, at most limit bytes of it. A body
// declared or found to be longer is refused with 413.
func readWire(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, reject(http.StatusRequestEntityTooLarge,
			"body of %d bytes is over the limit of %d bytes on the wire", r.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if int64(len(data)) > limit {
		return data[:limit], reject(http.StatusRequestEntityTooLarge,
			"body is over the limit of %d bytes on the wire", limit)
	}
	if err != nil {
		return data, reject(http.StatusBadRequest, "reading body: %v", err)
	}
	return data, nil
}

// gunzip decompresses wire, refusing with 413 as soon as the output passes
// limit (so a gzip bomb costs at most limit+1 bytes) and with 400 when wire
// is not gzip.
func gunzip(wire []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(wire))
	if err != nil {
		return nil, reject(http.StatusBadRequest, "body is not gzip: %v", err)
	}
	defer zr.Close()
	data, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if int64(len(data)) > limit {
		return data[:limit], reject(http.StatusRequestEntityTooLarge,
			"body is over the limit of %d bytes decompressed", limit)
	}
	if err != nil {
		return data, reject(http.StatusBadRequest, "body is not valid gzip: %v", err)
	}
	return data, nil
}

// drain reads and discards what is left of body, up to drainLimit bytes.
func drain(body io.Reader) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
}
