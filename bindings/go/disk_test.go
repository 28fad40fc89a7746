package purplerain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The disk adapter: events and a cursor kept across Close survive into a new Bus on the same
// directory, and a second Bus on a directory in use is refused with ErrDiskLocked.
func TestDiskSurvivesReopenFromAKeptCursor(t *testing.T) {
	config := fmt.Sprintf(`{"shards":4,"adapter":{"type":"disk","dir":%q}}`, t.TempDir())
	seen := map[string]int{}
	count := func(events []Event) {
		for _, e := range events {
			seen[string(e.Payload)]++
		}
	}

	b, err := New(config)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for n := 0; n < 1000; n++ {
		if err := b.IngestRaw(event(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, cursor := pollAll(t, b, PollRequest{Limit: 300})
	count(events)
	_, err = New(config)
	if !errors.Is(err, ErrDiskLocked) || !errors.Is(err, ErrAdapter) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second bus on the directory: %v, want ErrDiskLocked naming the pid", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = newBus(t, config)
	for n := 1000; n < 1500; n++ {
		if err := b.IngestRaw(event(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ = pollAll(t, b, PollRequest{Limit: 300, From: cursor})
	if len(events) != 500 {
		t.Errorf("%d events after the kept cursor, want the 500 ingested after reopening", len(events))
	}
	count(events)
	for n := 0; n < 1500; n++ {
		if got := seen[string(event(n))]; got != 1 {
			t.Errorf("event %d returned %d times", n, got)
		}
	}
}
