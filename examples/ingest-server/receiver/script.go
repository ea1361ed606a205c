package receiver

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ActionKind says what the server does with one request.
type ActionKind int

// The kinds of script items.
const (
	// ActOK handles the request normally.
	ActOK ActionKind = iota
	// ActStatus reads and discards the body and answers Action.Status.
	ActStatus
	// ActReset reads part of the body, then aborts the TCP connection
	// with a reset (SO_LINGER 0).
	ActReset
	// ActHang reads the body and never answers: the handler blocks until
	// the client goes away or the server is closed.
	ActHang
	// ActSlow waits Action.Delay, then handles the request normally.
	ActSlow
)

// RetryAfterForm says whether and how a scripted answer carries Retry-After.
type RetryAfterForm int

// The forms of Retry-After.
const (
	NoRetryAfter      RetryAfterForm = iota
	RetryAfterSeconds                // "Retry-After: N"
	RetryAfterDate                   // "Retry-After: <HTTP date N s from now>"
)

// Action is one item of a fault script, such as "ok", "503", "429/ra=2",
// "429/date=3", "302", "reset", "hang" or "slow/ms=200".
type Action struct {
	Kind ActionKind
	// Status is the code answered by ActStatus.
	Status int
	// RetryAfter and RetryAfterSecs set the Retry-After header of ActStatus.
	RetryAfter     RetryAfterForm
	RetryAfterSecs int
	// Delay is the wait of ActSlow.
	Delay time.Duration

	text string
}

// String returns the item as written in the script ("ok" for the zero Action).
func (a Action) String() string {
	if a.text == "" {
		return "ok"
	}
	return a.text
}

// ParseScript parses a comma-separated fault script. Spaces around items are
// ignored; an empty script gives no items.
func ParseScript(s string) ([]Action, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var actions []Action
	for i, item := range strings.Split(s, ",") {
		a, err := ParseAction(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("script item %d: %w", i+1, err)
		}
		actions = append(actions, a)
	}
	return actions, nil
}

// ParseAction parses one script item.
func ParseAction(item string) (Action, error) {
	head, opts, err := splitItem(item)
	if err != nil {
		return Action{}, err
	}
	a := Action{text: item}
	switch head {
	case "ok":
		a.Kind = ActOK
	case "reset":
		a.Kind = ActReset
	case "hang":
		a.Kind = ActHang
	case "slow":
		a.Kind = ActSlow
		return parseSlow(a, opts)
	default:
		return parseStatus(a, head, opts)
	}
	if len(opts) > 0 {
		return Action{}, fmt.Errorf("%q takes no options", head)
	}
	return a, nil
}

// splitItem splits "head/k=v/k=v" into the head and its options.
func splitItem(item string) (string, map[string]int, error) {
	if item == "" {
		return "", nil, fmt.Errorf("empty item")
	}
	parts := strings.Split(item, "/")
	opts := make(map[string]int)
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return "", nil, fmt.Errorf("%q: option %q is not key=value", item, p)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return "", nil, fmt.Errorf("%q: option %q needs a whole number >= 0", item, p)
		}
		if _, dup := opts[k]; dup {
			return "", nil, fmt.Errorf("%q: option %q given twice", item, k)
		}
		opts[k] = n
	}
	return parts[0], opts, nil
}

func parseSlow(a Action, opts map[string]int) (Action, error) {
	ms, ok := opts["ms"]
	if !ok || len(opts) != 1 {
		return Action{}, fmt.Errorf("%q: slow takes exactly one option, ms=N", a.text)
	}
	a.Delay = time.Duration(ms) * time.Millisecond
	return a, nil
}

func parseStatus(a Action, head string, opts map[string]int) (Action, error) {
	code, err := strconv.Atoi(head)
	if err != nil || len(head) != 3 || code < 200 || code > 599 {
		return Action{}, fmt.Errorf("%q: want ok, reset, hang, slow/ms=N or a status code 200-599", a.text)
	}
	a.Kind = ActStatus
	a.Status = code
	for k, v := range opts {
		switch k {
		case "ra":
			a.RetryAfter = RetryAfterSeconds
		case "date":
			a.RetryAfter = RetryAfterDate
		default:
			return Action{}, fmt.Errorf("%q: unknown option %q (want ra=N or date=N)", a.text, k)
		}
		a.RetryAfterSecs = v
	}
	if len(opts) > 1 {
		return Action{}, fmt.Errorf("%q: give ra=N or date=N, not both", a.text)
	}
	return a, nil
}

// script hands out the actions of a fault script one per request, in
// arrival order; once it runs out every request is handled normally.
type script struct {
	mu    sync.Mutex
	items []Action
}

func newScript(items []Action) *script {
	return &script{items: append([]Action(nil), items...)}
}

// next consumes and returns the next action.
func (s *script) next() Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.items) == 0 {
		return Action{}
	}
	a := s.items[0]
	s.items = s.items[1:]
	return a
}

// remaining reports how many items are left.
func (s *script) remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}
