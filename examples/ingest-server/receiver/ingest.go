package receiver

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pprofio/pprofio/examples/ingest-server/ingestpb"
)

// handleIngest is the normal handling of a request to the ingest path.
func (s *Server) handleIngest(ex *exchange) {
	if ex.r.Method != http.MethodPost {
		ex.w.Header().Set("Allow", http.MethodPost)
		ex.reply(http.StatusMethodNotAllowed, "method not allowed: use POST")
		return
	}
	if err := s.checkRequest(ex.r); err != nil {
		ex.fail(err)
		return
	}
	req, err := s.readUpload(ex)
	if err != nil {
		ex.fail(err)
		return
	}
	if err := validate(req, ex.r.Header.Get("Idempotency-Key")); err != nil {
		ex.fail(err)
		return
	}
	s.accept(ex, req)
}

// checkRequest checks the API key and the content headers.
func (s *Server) checkRequest(r *http.Request) error {
	if err := s.checkAuth(r); err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-protobuf" {
		return reject(http.StatusUnsupportedMediaType, "Content-Type %.60q: want application/x-protobuf", ct)
	}
	ce := r.Header.Get("Content-Encoding")
	if !strings.EqualFold(strings.TrimSpace(ce), "gzip") {
		return reject(http.StatusUnsupportedMediaType, "Content-Encoding %.60q: want gzip", ce)
	}
	return nil
}

// readUpload reads, decompresses and decodes the body within the limits,
// noting sizes and decoded fields in the record.
func (s *Server) readUpload(ex *exchange) (*ingestpb.UploadRequest, error) {
	wire, err := readWire(ex.r, s.opts.MaxWireBytes)
	ex.rec.WireBytes = int64(len(wire))
	if err != nil {
		return nil, err
	}
	body, err := gunzip(wire, s.opts.MaxBodyBytes)
	ex.rec.BodyBytes = int64(len(body))
	if err != nil {
		return nil, err
	}
	req := new(ingestpb.UploadRequest)
	if err := proto.Unmarshal(body, req); err != nil {
		return nil, reject(http.StatusBadRequest, "body is not a pprofio.ingest.v1.UploadRequest: %v", err)
	}
	ex.rec.noteUpload(req)
	return req, nil
}

// accept keeps an accepted upload and answers 200, or 409 for a repeat.
func (s *Server) accept(ex *exchange, req *ingestpb.UploadRequest) {
	entry, err := s.store.accept(req, s.opts.Now())
	if errors.Is(err, errDuplicate) {
		s.opts.Logger.Printf("duplicate batch %s seq %d from %q (%s): accepted before, answered 409",
			req.GetBatchId(), req.GetSequence(), req.GetSource().GetService(), req.GetSource().GetInstanceId())
		ex.reply(http.StatusConflict, "batch "+req.GetBatchId()+" was accepted before")
		return
	}
	if err != nil {
		ex.fail(fmt.Errorf("storing batch %s: %w", req.GetBatchId(), err))
		return
	}
	ex.rec.Part = entry.Part
	part := ""
	if entry.Part > 1 {
		part = fmt.Sprintf(" part %d", entry.Part) // of a batch split after a 413
	}
	s.opts.Logger.Printf("accepted batch %s seq %d%s from %q (%s): %d profiles, %d events, %d spans",
		entry.BatchID, entry.Sequence, part, entry.Source.Service, entry.Source.InstanceID,
		len(entry.Profiles), len(entry.Events), entry.Spans)
	ex.replyType(http.StatusOK, "application/json",
		fmt.Sprintf(`{"status":"accepted","batch_id":%q,"profiles":%d}`+"\n", entry.BatchID, len(entry.Profiles)))
}
