package purplerain

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pollUntil long-polls b until it returned want events or 30 s passed.
func pollUntil(t *testing.T, b *Bus, want int) []Event {
	t.Helper()
	var all []Event
	req := PollRequest{Limit: 1000, Wait: 100 * time.Millisecond}
	for deadline := time.Now().Add(30 * time.Second); len(all) < want && time.Now().Before(deadline); {
		page, err := b.Poll(req)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		all = append(all, page.Events...)
		req.From = page.Cursor
	}
	return all
}

// Two buses joined by the Net adapter through the JSON config: each holds both nodes' events
// exactly once, each with the ingesting node as Origin.
func TestNetTwoNodes(t *testing.T) {
	const n = 1000
	key := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	pa, pb := freePort(t), freePort(t)
	a := newBus(t, fmt.Sprintf(`{"adapter":{"type":"net","listen":"127.0.0.1:%d","key":"%s"}}`, pa, key))
	b := newBus(t, fmt.Sprintf(`{"adapter":{"type":"net","listen":"127.0.0.1:%d","peers":["127.0.0.1:%d"],"key":"%s"}}`, pb, pa, key))
	for i := 0; i < 2*n; i++ {
		on := a
		if i >= n {
			on = b
		}
		if err := on.IngestRaw(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, bus := range []*Bus{a, b} {
		if err := bus.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	var origins [2]map[uint64]bool
	for i, bus := range []*Bus{a, b} {
		events := pollUntil(t, bus, 2*n)
		seen := map[string]bool{}
		origins[i] = map[uint64]bool{}
		for _, e := range events {
			if seen[string(e.Payload)] {
				t.Fatalf("node %d: %s twice", i, e.Payload)
			}
			seen[string(e.Payload)] = true
			origins[i][e.Origin] = true
		}
		if len(seen) != 2*n {
			t.Fatalf("node %d holds %d of %d events", i, len(seen), 2*n)
		}
		if len(origins[i]) != 2 || origins[i][0] {
			t.Fatalf("node %d: origins %v, want two nonzero node ids", i, origins[i])
		}
	}
	for id := range origins[0] {
		if !origins[1][id] {
			t.Fatalf("origins differ between the nodes: %v and %v", origins[0], origins[1])
		}
	}
}
