// Quickstart of the Go binding: ingest events into an in-memory bus, poll them back with
// cursors, print the counters.
//
//	cargo build --release --lib      # at the repository root: the library the binding links
//	cd examples/go && go run .
package main

import (
	"errors"
	"fmt"
	"log"

	"purplerain"
)

func main() {
	bus, err := purplerain.New(`{"shards":4,"adapter":{"type":"memory"}}`)
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	// One event as a Go value, one as raw bytes routed by a key, a batch in one library call.
	if err := bus.Ingest(map[string]any{"kind": "click", "user": 7}); err != nil {
		log.Fatal(err)
	}
	if err := bus.IngestRawWithKey([]byte(`{"kind":"view","user":7}`), []byte("user-7")); err != nil {
		log.Fatal(err)
	}
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = []byte(fmt.Sprintf(`{"kind":"tick","n":%d}`, i))
	}
	if n, err := bus.IngestRawBatch(batch); err != nil {
		log.Fatalf("batch stopped after %d events: %v", n, err)
	}
	if err := bus.Flush(); err != nil { // every event is in the adapter now
		log.Fatal(err)
	}

	// Read everything back, 250 at a time; the cursor never repeats or skips an event.
	req := purplerain.PollRequest{Limit: 250}
	total := 0
	for {
		page, err := bus.Poll(req)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range page.Events {
			if total < 2 {
				fmt.Printf("shard %d seq %d id %s: %s\n", e.Shard, e.Sequence, e.ID, e.Payload)
			}
			total++
		}
		req.From = page.Cursor
		if !page.HasMore {
			break
		}
	}
	fmt.Println("polled", total, "events")

	// Only the clicks, with a filter.
	clicks, err := bus.Poll(purplerain.PollRequest{Filter: map[string]any{"path": "kind", "value": "click"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("clicks:", len(clicks.Events))

	if err := bus.Close(); err != nil {
		log.Fatal(err)
	}
	stats, err := bus.Stats() // the final counters stay readable after Close
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ingested %d, dispatched %d, dropped %d\n",
		stats.EventsIngested, stats.EventsDispatched, stats.EventsDropped)
	if err := bus.IngestRaw([]byte("late")); errors.Is(err, purplerain.ErrShuttingDown) {
		fmt.Println("after Close:", err)
	}
}
