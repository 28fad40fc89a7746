package purplerain

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

// The library copies what it keeps: the caller may overwrite its buffers right after a call.
func TestIngestDoesNotRetainTheCallersBuffers(t *testing.T) {
	b := newBus(t, `{"shards":1,"adapter":{"type":"memory"}}`)
	buf := []byte("first")
	if err := b.IngestRaw(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	batch := [][]byte{[]byte("second"), []byte("third")}
	if _, err := b.IngestRawBatch(batch); err != nil {
		t.Fatal(err)
	}
	copy(batch[0], "YYYYYY")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ := pollAll(t, b, PollRequest{})
	var got []string
	for _, e := range events {
		got = append(got, string(e.Payload))
	}
	if len(got) != 3 || got[0] != "first" || got[1] != "second" || got[2] != "third" {
		t.Fatalf("got %q", got)
	}
}

// A batch larger than one pack chunk crosses several times, in order, all accepted.
func TestIngestRawBatchLargerThanAChunk(t *testing.T) {
	b := newBus(t, `{"shards":1,"ring_capacity":65536,"adapter":{"type":"memory"}}`)
	const n = 3000
	batch := make([][]byte, n)
	for i := range batch {
		e := bytes.Repeat([]byte{'a' + byte(i%26)}, 1000) // 3 MB in all: three chunks or more
		batch[i] = append([]byte(strconv.Itoa(i)+":"), e...)
	}
	if k, err := b.IngestRawBatch(batch); err != nil || k != n {
		t.Fatalf("IngestRawBatch = %d, %v", k, err)
	}
	if k, err := b.IngestRawBatch(nil); err != nil || k != 0 {
		t.Fatalf("empty batch = %d, %v", k, err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ := pollAll(t, b, PollRequest{Limit: 1000})
	if len(events) != n {
		t.Fatalf("%d events, want %d", len(events), n)
	}
	for i, e := range events { // one shard: ingest order
		if !bytes.Equal(e.Payload, batch[i]) {
			t.Fatalf("event %d differs", i)
		}
	}
}

// A refused event in a later chunk: the count covers the earlier chunks, the message says
// where the chunk started.
func TestIngestRawBatchReportsAcceptedAcrossChunks(t *testing.T) {
	b := newBus(t, `{"shards":1,"ring_capacity":2,"backpressure":"drop_newest","adapter":{"type":"noop"}}`)
	big := make([][]byte, 3000)
	for i := range big {
		big[i] = make([]byte, 1000)
	}
	n, err := b.IngestRawBatch(big)
	if !errors.Is(err, ErrBackpressure) {
		t.Fatalf("got %v", err)
	}
	if s := mustStats(t, b); s.EventsIngested != uint64(n) {
		t.Fatalf("told %d accepted, library ingested %d", n, s.EventsIngested)
	}
}

func TestIngestEncodesValuesAsJSON(t *testing.T) {
	b := newBus(t, `{"shards":1,"adapter":{"type":"memory"}}`)
	type click struct {
		User int    `json:"user"`
		Kind string `json:"kind"`
	}
	if err := b.Ingest(click{7, "click"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Ingest(json.RawMessage(` [1, 2] `)); err != nil { // stored as given
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ := pollAll(t, b, PollRequest{})
	if len(events) != 2 || string(events[0].Payload) != `{"user":7,"kind":"click"}` || string(events[1].Payload) != ` [1, 2] ` {
		t.Fatalf("got %q", events)
	}
}

// Events with one key land on one shard, in order.
func TestIngestRawWithKeyKeepsAKeysOrder(t *testing.T) {
	b := newBus(t, memoryConfig)
	for i := 0; i < 200; i++ {
		if err := b.IngestRawWithKey([]byte(strconv.Itoa(i)), []byte("user-42")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ := pollAll(t, b, PollRequest{})
	if len(events) != 200 {
		t.Fatalf("%d events", len(events))
	}
	for i, e := range events {
		if e.Shard != events[0].Shard || string(e.Payload) != strconv.Itoa(i) {
			t.Fatalf("event %d: shard %d payload %s", i, e.Shard, e.Payload)
		}
	}
}
