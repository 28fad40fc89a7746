package purplerain

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVersionsMatchTheHeader(t *testing.T) {
	if ABIVersion() != HeaderABIVersion {
		t.Fatalf("library ABI %d, header %d", ABIVersion(), HeaderABIVersion)
	}
	if Version() == "" {
		t.Fatal("empty library version")
	}
}

func TestNewWithEmptyConfigUsesTheDefaults(t *testing.T) {
	b := newBus(t, "")
	n, err := b.ShardCount()
	if err != nil || n != 4 {
		t.Fatalf("ShardCount = %d, %v; want 4 (the default)", n, err)
	}
	if err := b.IngestRaw([]byte("x")); err != nil { // Noop adapter: accepted and discarded
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if s := mustStats(t, b); s.EventsIngested != 1 || s.EventsDispatched != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCloseIsIdempotentAlsoConcurrently(t *testing.T) {
	b, err := New(memoryConfig)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
	if !b.h.freed.Load() {
		t.Fatal("handle not freed after Close with no call in flight")
	}
}

func TestEveryCallAfterCloseReturnsErrShuttingDown(t *testing.T) {
	b, err := New(memoryConfig)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := b.IngestRaw(event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]error{}
	calls["Ingest"] = b.Ingest(map[string]int{"a": 1})
	calls["IngestJSON"] = b.IngestJSON([]byte(`{}`))
	calls["IngestRaw"] = b.IngestRaw([]byte("x"))
	calls["IngestRawWithKey"] = b.IngestRawWithKey([]byte("x"), []byte("k"))
	_, calls["IngestRawBatch"] = b.IngestRawBatch([][]byte{[]byte("x")})
	_, calls["IngestPacked"] = b.IngestPacked([]byte("x"), []uint32{1})
	_, calls["Poll"] = b.Poll(PollRequest{})
	calls["Flush"] = b.Flush()
	_, calls["ShardIDs"] = b.ShardIDs()
	_, calls["ShardCount"] = b.ShardCount()
	_, calls["AddShards"] = b.AddShards(1)
	calls["RemoveShards"] = b.RemoveShards([]uint16{0})
	_, calls["SuggestScaling"] = b.SuggestScaling()
	for name, err := range calls {
		if !errors.Is(err, ErrShuttingDown) {
			t.Errorf("%s after Close: %v, want ErrShuttingDown", name, err)
		}
	}
	// The final counters stay readable: Close kept them.
	s := mustStats(t, b)
	if s.EventsIngested != 10 {
		t.Fatalf("final stats %+v, want 10 ingested", s)
	}
	checkInvariant(t, s)
}

func TestCallsAfterShutdownFailInTheLibraryButStatsAndShardsWork(t *testing.T) {
	b := newBus(t, memoryConfig)
	if err := b.IngestRaw([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(); err != nil { // idempotent
		t.Fatal(err)
	}
	e := wantErr(t, "IngestRaw after Shutdown", b.IngestRaw([]byte("after")), ErrShuttingDown)
	if e.Status != Status(8) || e.Message == "" {
		t.Fatalf("want the library's status 8 and its message, got %#v", e)
	}
	_, err := b.Poll(PollRequest{})
	wantErr(t, "Poll after Shutdown", err, ErrShuttingDown)
	wantErr(t, "Flush after Shutdown", b.Flush(), ErrShuttingDown)
	_, err = b.AddShards(1)
	wantErr(t, "AddShards after Shutdown", err, ErrShuttingDown)
	if n, err := b.ShardCount(); err != nil || n != 4 {
		t.Fatalf("ShardCount after Shutdown = %d, %v", n, err)
	}
	s := mustStats(t, b)
	if s.EventsIngested != 1 {
		t.Fatalf("stats %+v", s)
	}
	checkInvariant(t, s)
}

// A Bus nobody closes is shut down and freed by its finalizer once unreachable.
func TestFinalizerFreesAForgottenBus(t *testing.T) {
	freed := make(chan struct{})
	var target atomic.Pointer[handle]
	hook := func(h *handle) {
		if h == target.Load() {
			close(freed)
		}
	}
	freeHook.Store(&hook)
	defer freeHook.Store(nil)

	func() {
		b, err := New(memoryConfig)
		if err != nil {
			t.Fatal(err)
		}
		target.Store(b.h)
		if err := b.IngestRaw([]byte("forgotten")); err != nil {
			t.Fatal(err)
		}
	}()
	// Finalizers run after a GC finds the Bus unreachable; collect until it has happened.
	deadline := time.After(20 * time.Second)
	for {
		runtime.GC()
		select {
		case <-freed:
			h := target.Load()
			s := statsFromC(&h.final)
			if h.finalErr != nil || s.EventsIngested != 1 {
				t.Fatalf("final stats %+v, %v", s, h.finalErr)
			}
			checkInvariant(t, s)
			return
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("forgotten bus not freed after 20 s of GCs")
		}
	}
}

// Eight producers (single, batch, packed), a long-polling consumer, Flush and Stats callers
// all race with Close. Run with -race. Every call either succeeds or returns
// ErrShuttingDown; the handle is freed exactly once, after the last call left; the final
// counters equal what the producers were told was accepted; no event is polled twice.
func TestConcurrentIngestAndPollRaceWithClose(t *testing.T) {
	var frees atomic.Int32
	var target atomic.Pointer[handle]
	hook := func(h *handle) {
		if h == target.Load() {
			frees.Add(1)
		}
	}
	freeHook.Store(&hook)
	defer freeHook.Store(nil)

	b, err := New(`{"shards":4,"ring_capacity":1024,"backpressure":"block","adapter":{"type":"memory"}}`)
	if err != nil {
		t.Fatal(err)
	}
	target.Store(b.h)

	const producers = 8
	var accepted [producers]atomic.Int64
	var progress atomic.Int64
	var wg sync.WaitGroup
	fail := func(who string, err error) {
		if !errors.Is(err, ErrShuttingDown) {
			t.Errorf("%s: %v (want nil or ErrShuttingDown)", who, err)
		}
	}
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			batch := make([][]byte, 50)
			for i := 0; ; i++ {
				var n int
				var err error
				switch p % 3 {
				case 0:
					err = b.IngestRaw(event(p*1_000_000 + i))
					if err == nil {
						n = 1
					}
				case 1:
					for j := range batch {
						batch[j] = event(p*1_000_000 + i*len(batch) + j)
					}
					n, err = b.IngestRawBatch(batch)
				case 2:
					e := event(p*1_000_000 + i)
					n, err = b.IngestPacked(e, []uint32{uint32(len(e))})
				}
				accepted[p].Add(int64(n))
				progress.Add(int64(n))
				if err != nil {
					fail("producer", err)
					return
				}
			}
		}(p)
	}
	seen := map[[2]uint64]bool{}
	var polled atomic.Int64
	wg.Add(1)
	go func() { // consumer: long polls with cursors until the bus closes
		defer wg.Done()
		req := PollRequest{Limit: 500, Wait: 50 * time.Millisecond}
		for {
			page, err := b.Poll(req)
			if err != nil {
				fail("Poll", err)
				return
			}
			for _, e := range page.Events {
				k := [2]uint64{uint64(e.Shard), e.Sequence}
				if seen[k] {
					t.Errorf("event %v polled twice", k)
				}
				seen[k] = true
			}
			polled.Add(int64(len(page.Events)))
			req.From = page.Cursor
		}
	}()
	wg.Add(1)
	go func() { // flushes and counters while everything runs
		defer wg.Done()
		for {
			if _, err := b.Stats(); err != nil {
				t.Errorf("Stats: %v", err)
				return
			}
			if err := b.Flush(); err != nil {
				fail("Flush", err)
				return
			}
		}
	}()
	// Close once producers and consumer have demonstrably made progress.
	for progress.Load() < 20_000 || polled.Load() == 0 {
		runtime.Gosched()
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := frees.Load(); n != 1 {
		t.Fatalf("handle freed %d times, want exactly 1", n)
	}
	s := mustStats(t, b)
	var total int64
	for p := range accepted {
		total += accepted[p].Load()
	}
	if s.EventsIngested != uint64(total) {
		t.Fatalf("library ingested %d, producers were told %d", s.EventsIngested, total)
	}
	checkInvariant(t, s)
	if len(seen) == 0 {
		t.Fatal("the consumer polled nothing")
	}
	if uint64(len(seen)) > s.EventsDispatched {
		t.Fatalf("polled %d distinct events, only %d dispatched", len(seen), s.EventsDispatched)
	}
}

// A long poll blocked in the library is woken by Close (through the shutdown) and Close frees
// the handle only after the poll has left.
func TestCloseWakesALongPoll(t *testing.T) {
	b, err := New(memoryConfig)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Poll(PollRequest{Wait: time.Minute})
		done <- err
	}()
	for b.h.state.Load() != 1 { // the poll has entered the library (and nothing else has)
		runtime.Gosched()
	}
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("long poll ended with %v, want ErrShuttingDown", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Close took %v: the long poll was not woken", d)
	}
	if !b.h.freed.Load() {
		t.Fatal("not freed after the poll left")
	}
}

func TestFlushContextReportsEachDropOnce(t *testing.T) {
	// A tiny drop_oldest ring under one big batch evicts: whatever it dropped, the first
	// report says exactly that, and the next one nothing.
	b := newBus(t, `{"shards":1,"ring_capacity":64,"backpressure":"drop_oldest","adapter":{"type":"memory"}}`)
	events := make([][]byte, 5000)
	for i := range events {
		events[i] = event(i)
	}
	if _, err := b.IngestRawBatch(events); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	report, err := b.FlushContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if report.Dropped != stats.EventsDropped || report.Lossy != (report.Dropped > 0) || report.Undelivered != 0 {
		t.Fatalf("report %+v, stats dropped %d", report, stats.EventsDropped)
	}
	if again, err := b.FlushContext(context.Background()); err != nil || again != (FlushReport{}) {
		t.Fatalf("second flush: %+v, %v", again, err)
	}
}

func TestFlushContextDoneBeforehandIsErrTimeout(t *testing.T) {
	b := newBus(t, memoryConfig)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.FlushContext(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.FlushContext(context.Background()); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("after shutdown: %v", err)
	}
}
