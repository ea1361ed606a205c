package main

// The reference workload: a small order service that looks like a real Go
// service and does a fixed amount of work. Its HTTP/JSON handler decodes an
// order, hashes its payload (sha256, fanned out to short-lived goroutines),
// sorts a thousand generated keys and the order's items, keeps an 8 KiB
// record in a shared cache (a ring of cacheSlots records under one mutex,
// about 34 MiB live), reads a few related records, and answers JSON. A
// client in the same process drives it over loopback with a fixed number
// of requests on a few keep-alive connections.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pprofio/pprofio"
)

const (
	cacheSlots  = 4096    // records in the shared cache: the live heap
	recordBytes = 8 << 10 // payload of one cached record
	payloadLen  = 2 << 10 // bytes of the payload each order carries
	itemsPer    = 24      // items per order
	sortKeys    = 1000    // keys generated and sorted per request
	hashRounds  = 8       // times each fan-out goroutine hashes the payload
	fanout      = 4       // goroutines started per request
	related     = 3       // cached records each request reads
)

type item struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

type orderRequest struct {
	ID      uint64 `json:"id"`
	User    string `json:"user"`
	Items   []item `json:"items"`
	Payload []byte `json:"payload"` // base64 in JSON
}

type orderResponse struct {
	ID      uint64   `json:"id"`
	Digest  string   `json:"digest"`
	Total   float64  `json:"total"`
	Top     []string `json:"top"`
	Related int      `json:"related"`
	Cached  int      `json:"cached"`
}

// record is what the cache keeps for an order.
type record struct {
	key    string
	user   string
	digest [32]byte
	total  float64
	skus   []string
	data   []byte
}

// service is the order service: its cache and its HTTP server.
type service struct {
	spans bool // a pprofio span around every request (the pprofio-spans variant)
	// spanOff turns the spans off for a while (the paired measurement);
	// reqCtx keeps one request's context, for its span loop.
	spanOff atomic.Bool
	floor   bool // the paired measurement's floor run: a context value instead of a span
	// inRequest puts the span's context in the request (r.WithContext), as
	// a middleware would, instead of handing it down as an argument.
	inRequest bool
	reqCtx0   atomic.Pointer[context.Context]
	mu        sync.Mutex
	ring      []*record
	index     map[string]int
	next      int
	hits      uint64

	srv *http.Server
	ln  net.Listener
	url string
}

// floorKey is the context key of the floor run's value.
type floorKey struct{}

// xorshift is a small deterministic generator: the work depends only on
// the request number.
type xorshift uint64

func (x *xorshift) next() uint64 {
	v := uint64(*x)
	v ^= v << 13
	v ^= v >> 7
	v ^= v << 17
	*x = xorshift(v)
	return v
}

func newService() *service {
	return &service{ring: make([]*record, cacheSlots), index: make(map[string]int, cacheSlots)}
}

// fill puts cacheSlots records in the cache, so the live heap is there
// from the start.
func (s *service) fill() {
	for i := range cacheSlots {
		r := newRecord(uint64(1<<40+i), "warm", nil)
		s.put(r)
	}
}

func newRecord(id uint64, user string, payload []byte) *record {
	r := &record{key: "order-" + strconv.FormatUint(id, 10), user: user, data: make([]byte, recordBytes)}
	// Spread the payload over the record (or a pattern without one).
	if len(payload) == 0 {
		binary.LittleEndian.PutUint64(r.data, id)
	} else {
		for off := 0; off < len(r.data); off += copy(r.data[off:], payload) {
		}
	}
	return r
}

// put stores r in the next slot of the ring, evicting the oldest record.
func (s *service) put(r *record) {
	s.mu.Lock()
	if old := s.ring[s.next]; old != nil {
		delete(s.index, old.key)
	}
	s.ring[s.next] = r
	s.index[r.key] = s.next
	s.next = (s.next + 1) % len(s.ring)
	s.mu.Unlock()
}

// lookup reads a few records by key and folds them into a sum, under the
// cache's mutex (the little contention of the workload).
func (s *service) lookup(keys []string) (found int, sum uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if i, ok := s.index[k]; ok {
			r := s.ring[i]
			found++
			for j := 0; j < 256; j += 8 {
				sum += binary.LittleEndian.Uint64(r.data[j:])
			}
		}
	}
	s.hits += uint64(found)
	return found, sum
}

func (s *service) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	if s.spans { // every request inside a span, as an instrumented service would be
		mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
			if s.spanOff.Load() {
				s.handleOrder(w, r)
				return
			}
			if s.reqCtx0.Load() == nil {
				ctx := r.Context()
				s.reqCtx0.Store(&ctx)
			}
			if s.floor {
				// The least a span middleware does: carry a value in
				// the request's context.
				r = r.WithContext(context.WithValue(r.Context(), floorKey{}, "order"))
				s.serveOrder(r.Context(), w, r)
				return
			}
			ctx, span := pprofio.StartSpan(r.Context(), "order", "route", "/orders")
			defer span.End()
			if s.inRequest { // as a middleware would: the span's context in the request
				r = r.WithContext(ctx)
			}
			s.serveOrder(ctx, w, r)
		})
	} else {
		mux.HandleFunc("POST /orders", s.handleOrder)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String() + "/orders"
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// reqCtx is the context of a request the service served with a span.
func (s *service) reqCtx() context.Context {
	if c := s.reqCtx0.Load(); c != nil {
		return *c
	}
	return context.Background()
}

func (s *service) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

func (s *service) handleOrder(w http.ResponseWriter, r *http.Request) {
	s.serveOrder(r.Context(), w, r)
}

// serveOrder serves an order in ctx, the request's context or a span's.
func (s *service) serveOrder(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(req.Payload) == 0 || len(req.Items) == 0 {
		http.Error(w, "empty order", http.StatusBadRequest)
		return
	}

	// CPU: hash the payload in fanout short-lived goroutines.
	var wg sync.WaitGroup
	sums := make([][32]byte, fanout)
	for g := range fanout {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			var seed [8]byte
			binary.LittleEndian.PutUint64(seed[:], req.ID+uint64(g))
			h.Write(seed[:])
			for range hashRounds {
				h.Write(req.Payload)
			}
			h.Sum(sums[g][:0])
		}()
	}

	// CPU and small allocations: generate keys and sort them.
	x := xorshift(req.ID*0x9E3779B97F4A7C15 | 1)
	keys := make([]string, sortKeys)
	var buf [16]byte
	for i := range keys {
		keys[i] = string(strconv.AppendUint(buf[:0], x.next()%1e12, 36))
	}
	sort.Strings(keys)
	sort.Slice(req.Items, func(i, j int) bool {
		return req.Items[i].Price*float64(req.Items[i].Qty) > req.Items[j].Price*float64(req.Items[j].Qty)
	})
	wg.Wait()

	digest := sha256.New()
	for _, s := range sums {
		digest.Write(s[:])
	}
	rec := newRecord(req.ID, req.User, req.Payload)
	digest.Sum(rec.digest[:0])
	for _, it := range req.Items {
		rec.total += it.Price * float64(it.Qty)
		rec.skus = append(rec.skus, it.SKU)
	}

	// The shared cache: store this order, read a few earlier ones.
	s.put(rec)
	var rel []string
	for k := uint64(1); k <= related; k++ {
		if req.ID >= k*97 {
			rel = append(rel, "order-"+strconv.FormatUint(req.ID-k*97, 10))
		}
	}
	found, _ := s.lookup(rel)

	resp := orderResponse{
		ID:      req.ID,
		Digest:  hex.EncodeToString(rec.digest[:]),
		Total:   rec.total,
		Top:     keys[:10],
		Related: len(rel),
		Cached:  found,
	}
	if ctx.Err() != nil {
		return // the client went away
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&resp)
}

// payloads are the order payloads the client picks from.
var payloads = func() [][]byte {
	ps := make([][]byte, 64)
	x := xorshift(88172645463325252)
	for i := range ps {
		p := make([]byte, payloadLen)
		for j := 0; j < len(p); j += 8 {
			binary.LittleEndian.PutUint64(p[j:], x.next())
		}
		ps[i] = p
	}
	return ps
}()

func makeOrder(id uint64) *orderRequest {
	x := xorshift(id*0xBF58476D1CE4E5B9 | 1)
	req := &orderRequest{
		ID:      id,
		User:    "user-" + strconv.FormatUint(x.next()%5000, 10),
		Payload: payloads[id%uint64(len(payloads))],
		Items:   make([]item, itemsPer),
	}
	for i := range req.Items {
		req.Items[i] = item{
			SKU:   fmt.Sprintf("SKU-%06d", x.next()%1000000),
			Qty:   int(x.next()%5) + 1,
			Price: float64(x.next()%100000) / 100,
		}
	}
	return req
}

// drive sends n orders to url from conc goroutines, each on its own
// keep-alive connection, and returns a digest of the answers (the same for
// every run of the same n) and the number of failed requests.
func drive(url string, n, conc int) (digest string, failed int64, err error) {
	client := newClient(conc)
	defer client.CloseIdleConnections()
	return driveWith(client, url, 0, n, conc)
}

// newClient is the driver's client: conc keep-alive connections.
func newClient(conc int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// driveWith sends orders first to first+n-1 to url from conc goroutines
// over client's connections.
func driveWith(client *http.Client, url string, first int64, n, conc int) (digest string, failed int64, err error) {
	var next atomic.Int64
	next.Store(first)
	var fails atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	fail := func(err error) {
		fails.Add(1)
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	totals := make([]float64, conc)
	var wg sync.WaitGroup
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body bytes.Buffer
			for {
				id := next.Add(1) - 1
				if id >= first+int64(n) {
					return
				}
				body.Reset()
				if err := json.NewEncoder(&body).Encode(makeOrder(uint64(id))); err != nil {
					fail(err)
					continue
				}
				resp, err := client.Post(url, "application/json", &body)
				if err != nil {
					fail(err)
					continue
				}
				var out orderResponse
				derr := json.NewDecoder(resp.Body).Decode(&out)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if derr != nil || resp.StatusCode != http.StatusOK || out.ID != uint64(id) {
					if derr == nil {
						derr = fmt.Errorf("status %d, id %d", resp.StatusCode, out.ID)
					}
					fail(derr)
					continue
				}
				totals[g] += out.Total
			}
		}()
	}
	wg.Wait()
	var sum float64
	for _, t := range totals {
		sum += t
	}
	if firstErr != nil {
		err = errors.Join(errors.New("some requests failed"), firstErr)
	}
	return fmt.Sprintf("%.2f", sum), fails.Load(), err
}
