package purplerain_test

import (
	"errors"
	"fmt"
	"log"

	"purplerain"
)

// Ingest, flush, read everything back with cursors, check the counters.
func Example() {
	bus, err := purplerain.New(`{"shards":4,"adapter":{"type":"memory"}}`)
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	if err := bus.Ingest(map[string]any{"kind": "click", "user": 7}); err != nil {
		log.Fatal(err)
	}
	if _, err := bus.IngestRawBatch([][]byte{[]byte(`{"kind":"view"}`), []byte(`{"kind":"buy"}`)}); err != nil {
		log.Fatal(err)
	}
	if err := bus.Flush(); err != nil {
		log.Fatal(err)
	}

	req := purplerain.PollRequest{Limit: 100}
	read := 0
	for {
		page, err := bus.Poll(req)
		if err != nil {
			log.Fatal(err)
		}
		read += len(page.Events)
		req.From = page.Cursor
		if !page.HasMore {
			break
		}
	}
	stats, _ := bus.Stats()
	fmt.Println("read", read, "of", stats.EventsIngested)
	// Output: read 3 of 3
}

// A filtered poll: only the events whose "kind" is "click".
func ExampleBus_Poll_filter() {
	bus, _ := purplerain.New(`{"adapter":{"type":"memory"}}`)
	defer bus.Close()
	for _, kind := range []string{"click", "view", "click"} {
		_ = bus.Ingest(map[string]string{"kind": kind})
	}
	_ = bus.Flush()
	page, err := bus.Poll(purplerain.PollRequest{Filter: map[string]any{"path": "kind", "value": "click"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(page.Events), "clicks")
	// Output: 2 clicks
}

// Errors wrap one sentinel per failure kind and carry the library's message.
func ExampleError() {
	_, err := purplerain.New(`{"shards":4,"colour":"purple"}`)
	fmt.Println(errors.Is(err, purplerain.ErrConfig))

	bus, _ := purplerain.New("")
	_ = bus.Close()
	fmt.Println(errors.Is(bus.IngestRaw([]byte("late")), purplerain.ErrShuttingDown))
	// Output:
	// true
	// true
}
