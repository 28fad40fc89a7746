package purplerain

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestScalingAddsAndRemovesShards(t *testing.T) {
	b := newBus(t, `{"shards":2,"adapter":{"type":"memory"},"scaling":{"min_shards":1,"max_shards":8,"auto":false}}`)
	added, err := b.AddShards(2)
	if err != nil || len(added) != 2 {
		t.Fatalf("AddShards = %v, %v", added, err)
	}
	if n, _ := b.ShardCount(); n != 4 {
		t.Fatalf("%d shards after adding 2 to 2", n)
	}
	for i := 0; i < 100; i++ {
		if err := b.IngestRaw(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.RemoveShards(added[:1]); err != nil {
		t.Fatal(err)
	}
	ids, err := b.ShardIDs()
	if err != nil || len(ids) != 3 {
		t.Fatalf("ShardIDs = %v, %v", ids, err)
	}
	for _, id := range ids {
		if id == added[0] {
			t.Fatalf("removed shard %d still listed", id)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	events, _ := pollAll(t, b, PollRequest{}) // removed shards stay pollable: nothing lost
	if len(events) != 100 {
		t.Fatalf("%d events after removing a shard, want 100", len(events))
	}
	d, err := b.SuggestScaling()
	if err != nil {
		t.Fatal(err)
	}
	if d.Action == ScalingDown && len(d.ShardIDs) != d.Count {
		t.Fatalf("decision %+v", d)
	}
	if _, err := b.AddShards(100); !errors.Is(err, ErrScaling) {
		t.Fatalf("adding past max_shards: %v", err)
	}
}

// Stats invariant after Shutdown in every back-pressure mode, with rings small enough that
// drop_oldest evicts and drop_newest refuses.
func TestStatsInvariantAfterShutdownInEveryMode(t *testing.T) {
	for _, mode := range []string{"block", "drop_oldest", "drop_newest"} {
		t.Run(mode, func(t *testing.T) {
			b := newBus(t, `{"shards":2,"ring_capacity":4,"backpressure":"`+mode+`","adapter":{"type":"memory"}}`)
			accepted := 0
			batch := make([][]byte, 500)
			for i := range batch {
				batch[i] = event(i)
			}
			for round := 0; round < 20; round++ {
				n, err := b.IngestRawBatch(batch)
				accepted += n
				if err != nil && !errors.Is(err, ErrBackpressure) {
					t.Fatal(err)
				}
			}
			if err := b.Shutdown(); err != nil {
				t.Fatal(err)
			}
			s := mustStats(t, b)
			checkInvariant(t, s)
			if s.EventsIngested != uint64(accepted) {
				t.Fatalf("ingested %d, accepted %d", s.EventsIngested, accepted)
			}
			if s.EventsDropped != s.DroppedEvicted+s.DroppedAdapterFatal+s.DroppedRetryExhausted+s.DroppedLost {
				t.Fatalf("dropped %d is not the sum of its causes: %+v", s.EventsDropped, s)
			}
			if mode == "drop_newest" && s.RejectedBackpressure == 0 {
				t.Fatalf("no refusal with a ring of 4: %+v", s)
			}
		})
	}
}

func TestStatsJSONAndPrometheusAgreeWithStats(t *testing.T) {
	b := newBus(t, `{"shards":3,"adapter":{"type":"memory"}}`)
	for i := 0; i < 300; i++ {
		if err := b.IngestRaw(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	text, err := b.StatsJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema int `json:"schema"`
		Totals struct {
			EventsIngested   uint64 `json:"events_ingested"`
			EventsDispatched uint64 `json:"events_dispatched"`
			Shards           int    `json:"shards"`
		} `json:"totals"`
		Shards []struct {
			ID             uint16 `json:"id"`
			EventsIngested uint64 `json:"events_ingested"`
		} `json:"shards"`
		Adapter struct {
			Name    string `json:"name"`
			Metrics []struct {
				Name  string  `json:"name"`
				Value float64 `json:"value"`
			} `json:"metrics"`
		} `json:"adapter"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		t.Fatalf("%v in %s", err, text)
	}
	var perShard uint64
	for _, s := range doc.Shards {
		perShard += s.EventsIngested
	}
	if doc.Schema != 1 || doc.Totals.EventsIngested != 300 || doc.Totals.EventsDispatched != 300 ||
		doc.Totals.Shards != 3 || len(doc.Shards) != 3 || perShard != 300 || doc.Adapter.Name != "memory" {
		t.Fatalf("unexpected stats JSON: %s", text)
	}
	retained := 0.0
	for _, m := range doc.Adapter.Metrics {
		if m.Name == "memory_retained_events" {
			retained += m.Value
		}
	}
	if retained != 300 {
		t.Fatalf("memory_retained_events add up to %v, want 300", retained)
	}
	prom, err := b.StatsPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"# TYPE purple_rain_events_ingested_total counter\n",
		"\npurple_rain_events_ingested_total 300\n",
		"\npurple_rain_shards 3\n",
	} {
		if !strings.Contains(string(prom), line) {
			t.Fatalf("no %q in\n%s", line, prom)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StatsJSON(); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("StatsJSON after Close: %v", err)
	}
}

// PURPLE_RAIN_LOG=<level> makes the library write its log events to stderr: how a Go program
// reads them without callbacks. The test runs itself in a child process (the logger is
// process-wide and installed once) and reads the child's stderr.
func TestLogEnvWritesLibraryEventsToStderr(t *testing.T) {
	if os.Getenv("PURPLERAIN_LOG_CHILD") == "1" {
		b, err := New(`{"shards":2,"adapter":{"type":"memory"}}`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.AddShards(1); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	run := func(level string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLogEnvWritesLibraryEventsToStderr$", "-test.count=1")
		env := []string{"PURPLERAIN_LOG_CHILD=1"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PURPLE_RAIN_LOG=") {
				env = append(env, kv)
			}
		}
		if level != "" {
			env = append(env, "PURPLE_RAIN_LOG="+level)
		}
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("child: %v\n%s", err, stderr.String())
		}
		return stderr.String()
	}
	logged := run("info")
	for _, want := range []string{"scaling: shards added", "shutdown complete"} {
		if !strings.Contains(logged, want) {
			t.Fatalf("no %q on stderr with PURPLE_RAIN_LOG=info:\n%s", want, logged)
		}
	}
	if quiet := run(""); strings.Contains(quiet, "purple_rain") {
		t.Fatalf("log events without PURPLE_RAIN_LOG:\n%s", quiet)
	}
}
