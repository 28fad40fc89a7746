package purplerain

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeBenchBacklog()
	os.Exit(code)
}

// memoryConfig is a Memory-adapter bus: ingest then poll back, no server.
const memoryConfig = `{"shards":4,"adapter":{"type":"memory","max_events_per_shard":1000000}}`

// newBus creates a bus that is closed when the test ends.
func newBus(t testing.TB, config string) *Bus {
	t.Helper()
	b, err := New(config)
	if err != nil {
		t.Fatalf("New(%s): %v", config, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// event is a distinct JSON payload for number n.
func event(n int) []byte { return []byte(fmt.Sprintf(`{"n":%d,"kind":"k%d"}`, n, n%3)) }

// pollAll reads every page from `from` until HasMore is false and returns the events and the
// final cursor.
func pollAll(t testing.TB, b *Bus, req PollRequest) ([]Event, string) {
	t.Helper()
	var all []Event
	for {
		page, err := b.Poll(req)
		if err != nil {
			t.Fatalf("Poll(from %q): %v", req.From, err)
		}
		all = append(all, page.Events...)
		req.From = page.Cursor
		if !page.HasMore {
			return all, page.Cursor
		}
	}
}

// mustStats reads the counters or fails the test.
func mustStats(t testing.TB, b *Bus) Stats {
	t.Helper()
	s, err := b.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// checkInvariant asserts the contract's counter identity (after Flush, Shutdown or Close).
func checkInvariant(t testing.TB, s Stats) {
	t.Helper()
	if s.EventsDispatched+s.EventsDropped != s.EventsIngested {
		t.Fatalf("dispatched %d + dropped %d != ingested %d (%+v)",
			s.EventsDispatched, s.EventsDropped, s.EventsIngested, s)
	}
}

// wantErr asserts err wraps want.
func wantErr(t testing.TB, what string, err, want error) *Error {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %T is not *Error", what, err)
	}
	return e
}
