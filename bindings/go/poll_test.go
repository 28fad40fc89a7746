package purplerain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every ingest form in, every event out exactly once through cursors, with the right fields;
// then more events, read from the last cursor: only the new ones.
func TestRoundTripWithCursorsExactlyOnce(t *testing.T) {
	b := newBus(t, memoryConfig)
	want := map[string]bool{}
	n := 0
	next := func() []byte { e := event(n); n++; want[string(e)] = true; return e }

	for i := 0; i < 1000; i++ {
		if err := b.IngestRaw(next()); err != nil {
			t.Fatal(err)
		}
	}
	batch := make([][]byte, 2500)
	for i := range batch {
		batch[i] = next()
	}
	if k, err := b.IngestRawBatch(batch); err != nil || k != len(batch) {
		t.Fatalf("IngestRawBatch = %d, %v", k, err)
	}
	var data []byte
	var ends []uint32
	for i := 0; i < 1000; i++ {
		data = append(data, next()...)
		ends = append(ends, uint32(len(data)))
	}
	if k, err := b.IngestPacked(data, ends); err != nil || k != len(ends) {
		t.Fatalf("IngestPacked = %d, %v", k, err)
	}
	for i := 0; i < 500; i++ {
		if err := b.IngestRawWithKey(next(), []byte("user-"+strconv.Itoa(i%7))); err != nil {
			t.Fatal(err)
		}
		if err := b.IngestJSON(next()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}

	events, cursor := pollAll(t, b, PollRequest{Limit: 333})
	checkExactlyOnce(t, events, want)

	// More events: polling from the cursor returns exactly those.
	want = map[string]bool{}
	for i := 0; i < 777; i++ {
		if err := b.IngestRaw(next()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, cursor = pollAll(t, b, PollRequest{Limit: 100, From: cursor})
	checkExactlyOnce(t, events, want)
	// And nothing after that.
	page, err := b.Poll(PollRequest{From: cursor})
	if err != nil || len(page.Events) != 0 || page.HasMore {
		t.Fatalf("poll past the end: %d events, has_more %v, %v", len(page.Events), page.HasMore, err)
	}
}

// checkExactlyOnce asserts events are exactly want, each once, with consistent fields: the
// memory adapter's id "shard-sequence", per-shard increasing sequences and timestamps.
func checkExactlyOnce(t *testing.T, events []Event, want map[string]bool) {
	t.Helper()
	got := map[string]bool{}
	last := map[uint16]Event{}
	for _, e := range events {
		p := string(e.Payload)
		if got[p] {
			t.Fatalf("event %s polled twice", p)
		}
		if !want[p] {
			t.Fatalf("unexpected event %s", p)
		}
		got[p] = true
		if e.Shard >= 4 {
			t.Fatalf("shard %d", e.Shard)
		}
		if wantID := fmt.Sprintf("%d-%d", e.Shard, e.Sequence); e.ID != wantID {
			t.Fatalf("id %q, want %q", e.ID, wantID)
		}
		if prev, ok := last[e.Shard]; ok && (e.Sequence <= prev.Sequence || e.TimestampNs <= prev.TimestampNs) {
			t.Fatalf("shard %d: %+v after %+v", e.Shard, e, prev)
		}
		if e.TimestampNs < uint64(time.Now().Add(-time.Hour).UnixNano()) {
			t.Fatalf("timestamp %d is not a recent wall clock", e.TimestampNs)
		}
		last[e.Shard] = e
	}
	if len(got) != len(want) {
		t.Fatalf("polled %d distinct events, want %d", len(got), len(want))
	}
}

func TestPollTimestampOrderingMergesShards(t *testing.T) {
	b := newBus(t, memoryConfig)
	for i := 0; i < 2000; i++ {
		if err := b.IngestRaw(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ := pollAll(t, b, PollRequest{Limit: 256, Ordering: OrderingTimestamp})
	if len(events) != 2000 {
		t.Fatalf("%d events", len(events))
	}
	less := func(a, c Event) bool {
		if a.TimestampNs != c.TimestampNs {
			return a.TimestampNs < c.TimestampNs
		}
		if a.Shard != c.Shard {
			return a.Shard < c.Shard
		}
		return a.Sequence < c.Sequence
	}
	if !sort.SliceIsSorted(events, func(i, j int) bool { return less(events[i], events[j]) }) {
		t.Fatal("timestamp ordering is not sorted by (timestamp, shard, sequence)")
	}
}

func TestPollFilterAndShardSelection(t *testing.T) {
	b := newBus(t, memoryConfig)
	for i := 0; i < 300; i++ {
		if err := b.Ingest(map[string]any{"i": i, "kind": []string{"click", "view", "buy"}[i%3]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	clicks, _ := pollAll(t, b, PollRequest{Limit: 64, Filter: map[string]any{"path": "kind", "value": "click"}})
	if len(clicks) != 100 {
		t.Fatalf("%d clicks, want 100", len(clicks))
	}
	for _, e := range clicks {
		if !bytes.Contains(e.Payload, []byte(`"kind":"click"`)) {
			t.Fatalf("filter let through %s", e.Payload)
		}
	}
	raw, _ := pollAll(t, b, PollRequest{Filter: json.RawMessage(`{"$in":{"path":"kind","value":["view","buy"]}}`)})
	if len(raw) != 200 {
		t.Fatalf("%d view/buy events, want 200", len(raw))
	}
	shard2, _ := pollAll(t, b, PollRequest{Shards: []uint16{2}})
	for _, e := range shard2 {
		if e.Shard != 2 {
			t.Fatalf("asked for shard 2, got shard %d", e.Shard)
		}
	}
	all, _ := pollAll(t, b, PollRequest{})
	var onTwo int
	for _, e := range all {
		if e.Shard == 2 {
			onTwo++
		}
	}
	if len(shard2) != onTwo {
		t.Fatalf("shard 2 alone: %d events, in the full read: %d", len(shard2), onTwo)
	}
}

func TestEmptyAndBinaryPayloadsRoundTrip(t *testing.T) {
	b := newBus(t, `{"shards":1,"adapter":{"type":"memory"}}`)
	payloads := [][]byte{nil, {}, {0, 1, 2, 0xff}, []byte(strings.Repeat("z", 5000))}
	for _, p := range payloads {
		if err := b.IngestRaw(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ := pollAll(t, b, PollRequest{})
	if len(events) != len(payloads) {
		t.Fatalf("%d events", len(events))
	}
	for i, e := range events { // one shard: sequence order is ingest order
		if !bytes.Equal(e.Payload, payloads[i]) {
			t.Fatalf("event %d: %q, want %q", i, e.Payload, payloads[i])
		}
	}
}

// A long poll returns as soon as an event arrives; no sleeping on either side.
func TestLongPollReturnsWhenAnEventArrives(t *testing.T) {
	b := newBus(t, memoryConfig)
	got := make(chan *PollResponse, 1)
	errs := make(chan error, 1)
	go func() {
		page, err := b.Poll(PollRequest{Wait: time.Minute})
		if err != nil {
			errs <- err
			return
		}
		got <- page
	}()
	if err := b.IngestRaw([]byte(`{"wake":true}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case page := <-got:
		if len(page.Events) != 1 || string(page.Events[0].Payload) != `{"wake":true}` {
			t.Fatalf("long poll returned %+v", page)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("long poll did not return within 30 s of the ingest")
	}
}

func TestRequestJSONShape(t *testing.T) {
	req := PollRequest{Limit: 5, From: "abc", Filter: map[string]any{"path": "a", "value": 1},
		Ordering: OrderingTimestamp, Shards: []uint16{0, 3}, Wait: 1500 * time.Microsecond}
	got, err := req.requestJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"limit":5,"from":"abc","filter":{"path":"a","value":1},"ordering":"timestamp","shards":[0,3],"wait_ms":2}` + "\x00"
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got, _ := (&PollRequest{}).requestJSON(); string(got) != "{}\x00" {
		t.Fatalf("zero request: %q", got)
	}
	if got, _ := (&PollRequest{Shards: []uint16{}}).requestJSON(); string(got) != `{"shards":[]}`+"\x00" {
		t.Fatalf("empty shard list: %q", got)
	}
}
