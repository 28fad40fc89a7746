package purplerain

// Benchmarks, mirroring tests/c/bench.c so the figures compare with the C ABI's: 100-byte
// events, Noop adapter, 4 shards, ring_capacity 65536, "block" back-pressure, timed from the
// first call to the end of Flush (every event handed to the adapter); batches of 1000. Poll
// reads pages of 1000 from a Memory-adapter backlog of 1M events. The baselines push the same
// slices through a buffered Go channel to a draining goroutine, in the same run.
//
//	go test -bench . -run '^$'
//
// Each reports events/s.

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

const (
	benchEventBytes = 100
	benchBatch      = 1000
	benchBacklog    = 1_000_000
	benchNoop       = `{"shards":4,"ring_capacity":65536,"backpressure":"block","adapter":{"type":"noop"}}`
)

// benchPool is 1000 distinct 100-byte JSON events, as bench.c builds them.
var benchPool = func() [][]byte {
	pool := make([][]byte, benchBatch)
	for i := range pool {
		e := []byte(fmt.Sprintf(`{"n":%d,"pad":"`, i))
		for len(e) < benchEventBytes-2 {
			e = append(e, 'x')
		}
		pool[i] = append(e, '"', '}')
	}
	return pool
}()

func reportRate(b *testing.B, events int, start time.Time) {
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}

// ingestBench runs ingest over a fresh Noop bus and checks every event reached the adapter.
func ingestBench(b *testing.B, events int, ingest func(bus *Bus)) {
	bus, err := New(benchNoop)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ingest(bus)
	if err := bus.Flush(); err != nil {
		b.Fatal(err)
	}
	reportRate(b, events, start)
	b.StopTimer()
	if s, _ := bus.Stats(); s.EventsDispatched != uint64(events) {
		b.Fatalf("dispatched %d of %d", s.EventsDispatched, events)
	}
}

// One IngestRaw per event; b.N events.
func BenchmarkIngestRaw(b *testing.B) {
	ingestBench(b, b.N, func(bus *Bus) {
		for i := 0; i < b.N; i++ {
			if err := bus.IngestRaw(benchPool[i%benchBatch]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// IngestRaw from every P at once (contention on the handle's in-flight counter); b.N events.
func BenchmarkIngestRawParallel(b *testing.B) {
	ingestBench(b, b.N, func(bus *Bus) {
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if err := bus.IngestRaw(benchPool[i%benchBatch]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// IngestRawBatch of 1000 × 100-byte events per op (packed in Go, one crossing per batch).
func BenchmarkIngestRawBatch(b *testing.B) {
	ingestBench(b, b.N*benchBatch, func(bus *Bus) {
		for i := 0; i < b.N; i++ {
			if n, err := bus.IngestRawBatch(benchPool); err != nil || n != benchBatch {
				b.Fatal(n, err)
			}
		}
	})
}

// IngestPacked of the same 1000 events already packed by the caller (no Go-side copy).
func BenchmarkIngestPacked(b *testing.B) {
	var data []byte
	var ends []uint32
	for _, e := range benchPool {
		data = append(data, e...)
		ends = append(ends, uint32(len(data)))
	}
	ingestBench(b, b.N*benchBatch, func(bus *Bus) {
		for i := 0; i < b.N; i++ {
			if n, err := bus.IngestPacked(data, ends); err != nil || n != benchBatch {
				b.Fatal(n, err)
			}
		}
	})
}

var (
	backlogOnce sync.Once
	backlogBus  *Bus
	backlogErr  error
)

// benchBacklog is a Memory bus holding 1M events, built once per test binary.
func backlog(b *testing.B) *Bus {
	backlogOnce.Do(func() {
		backlogBus, backlogErr = New(fmt.Sprintf(
			`{"shards":4,"ring_capacity":65536,"backpressure":"block","adapter":{"type":"memory","max_events_per_shard":%d}}`,
			benchBacklog))
		for i := 0; backlogErr == nil && i < benchBacklog; i += benchBatch {
			_, backlogErr = backlogBus.IngestRawBatch(benchPool)
		}
		if backlogErr == nil {
			backlogErr = backlogBus.Flush()
		}
	})
	if backlogErr != nil {
		b.Fatal(backlogErr)
	}
	return backlogBus
}

func closeBenchBacklog() {
	if backlogBus != nil {
		backlogBus.Close()
	}
}

// One op is a page of 1000 events read into Go values, from a 1M-event backlog: the cursor
// walks the backlog and starts over at its end.
func BenchmarkPoll(b *testing.B) {
	benchPoll(b, func(bus *Bus, req PollRequest, _ *PollResponse) (*PollResponse, error) {
		return bus.Poll(req)
	})
}

// BenchmarkPoll with PollInto: the page's memory is reused, so nothing is allocated per event.
func BenchmarkPollInto(b *testing.B) {
	benchPoll(b, func(bus *Bus, req PollRequest, previous *PollResponse) (*PollResponse, error) {
		return previous, bus.PollInto(req, previous)
	})
}

// benchPoll reads pages with read (which may reuse the previous page) and touches every event.
func benchPoll(b *testing.B, read func(*Bus, PollRequest, *PollResponse) (*PollResponse, error)) {
	bus := backlog(b)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	req := PollRequest{Limit: benchBatch}
	page := &PollResponse{}
	events := 0
	var sink uint64
	for i := 0; i < b.N; i++ {
		var err error
		if page, err = read(bus, req, page); err != nil {
			b.Fatal(err)
		}
		for j := range page.Events {
			e := &page.Events[j]
			sink += uint64(len(e.Payload)) + uint64(e.Payload[len(e.Payload)-1]) + e.Sequence + uint64(len(e.ID))
		}
		events += len(page.Events)
		req.From = page.Cursor
		if !page.HasMore {
			req.From = ""
		}
	}
	reportRate(b, events, start)
	if sink == 0 {
		b.Fatal("read nothing")
	}
}

// Baseline: the same slices sent one by one on a buffered channel (capacity 65536, like the
// ring) to a goroutine that drains it; timed to the drain's end, like Flush.
func BenchmarkBaselineChannel(b *testing.B) {
	ch := make(chan []byte, 65536)
	done := make(chan int)
	go func() {
		n := 0
		for e := range ch {
			n += len(e)
		}
		done <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ch <- benchPool[i%benchBatch]
	}
	close(ch)
	n := <-done
	reportRate(b, b.N, start)
	if n != b.N*benchEventBytes {
		b.Fatal("drained", n)
	}
}

// Baseline for batches: each batch of 1000 slices sent as one channel element.
func BenchmarkBaselineChannelBatch(b *testing.B) {
	ch := make(chan [][]byte, 64)
	done := make(chan int)
	go func() {
		n := 0
		for batch := range ch {
			for _, e := range batch {
				n += len(e)
			}
		}
		done <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ch <- benchPool
	}
	close(ch)
	n := <-done
	reportRate(b, b.N*benchBatch, start)
	if n != b.N*benchBatch*benchEventBytes {
		b.Fatal("drained", n)
	}
}
