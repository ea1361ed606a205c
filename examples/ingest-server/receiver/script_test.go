package receiver

import (
	"testing"
	"time"
)

func TestParseScript(t *testing.T) {
	actions, err := ParseScript(" ok, 500 ,429/ra=2,429/date=3,302,reset,hang,slow/ms=250,503/ra=0")
	if err != nil {
		t.Fatal(err)
	}
	want := []Action{
		{Kind: ActOK},
		{Kind: ActStatus, Status: 500},
		{Kind: ActStatus, Status: 429, RetryAfter: RetryAfterSeconds, RetryAfterSecs: 2},
		{Kind: ActStatus, Status: 429, RetryAfter: RetryAfterDate, RetryAfterSecs: 3},
		{Kind: ActStatus, Status: 302},
		{Kind: ActReset},
		{Kind: ActHang},
		{Kind: ActSlow, Delay: 250 * time.Millisecond},
		{Kind: ActStatus, Status: 503, RetryAfter: RetryAfterSeconds, RetryAfterSecs: 0},
	}
	texts := []string{"ok", "500", "429/ra=2", "429/date=3", "302", "reset", "hang", "slow/ms=250", "503/ra=0"}
	if len(actions) != len(want) {
		t.Fatalf("%d actions, want %d", len(actions), len(want))
	}
	for i, a := range actions {
		if a.String() != texts[i] {
			t.Errorf("item %d: String() = %q, want %q", i, a.String(), texts[i])
		}
		a.text = ""
		if a != want[i] {
			t.Errorf("item %d = %+v, want %+v", i, a, want[i])
		}
	}
}

func TestParseScriptEmpty(t *testing.T) {
	actions, err := ParseScript("  ")
	if err != nil || len(actions) != 0 {
		t.Fatalf("ParseScript(blank) = %v, %v", actions, err)
	}
	if (Action{}).String() != "ok" {
		t.Errorf("zero Action is %q, want ok", Action{}.String())
	}
}

func TestParseScriptErrors(t *testing.T) {
	for _, s := range []string{
		"ok,,500", "nope", "42", "1000", "099", "600", "ok/ra=1", "reset/x=1", "hang/ms=1",
		"slow", "slow/ms=", "slow/ms=-1", "slow/ms=1/ra=2", "429/ra", "429/ra=x",
		"429/ra=1/date=2", "429/wait=1", "503/ra=1/ra=2",
	} {
		if _, err := ParseScript(s); err == nil {
			t.Errorf("ParseScript(%q) succeeded", s)
		}
	}
}

func TestScriptIsConsumedInOrder(t *testing.T) {
	actions, _ := ParseScript("500,reset")
	s := newScript(actions)
	actions[0] = Action{} // the script keeps its own copy
	for _, want := range []string{"500", "reset", "ok", "ok"} {
		if got := s.next().String(); got != want {
			t.Fatalf("next() = %q, want %q", got, want)
		}
	}
	if s.remaining() != 0 {
		t.Errorf("remaining = %d", s.remaining())
	}
}
