package purplerain

import (
	"errors"
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
