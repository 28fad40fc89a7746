package purplerain

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

// The sentinel table follows the library: one distinct sentinel for every failure status the
// library lists (pr_status_ALL), named as the library names it, and none for anything else.
func TestEveryStatusMapsToItsOwnSentinel(t *testing.T) {
	statuses := libraryStatuses()
	if len(statuses) < 2 || statuses[0] != 0 || statuses[0].String() != "PR_OK" {
		t.Fatalf("the library's statuses: %v", statuses)
	}
	seen := map[error]Status{}
	for _, s := range statuses[1:] {
		sentinel, ok := sentinels[s]
		if !ok {
			t.Errorf("status %d (%s) has no sentinel", s, s)
			continue
		}
		if other, dup := seen[sentinel]; dup {
			t.Errorf("statuses %d and %d share the sentinel %v", other, s, sentinel)
		}
		seen[sentinel] = s
		if !strings.HasPrefix(s.String(), "PR_ERR_") {
			t.Errorf("status %d is named %s by the library", s, s)
		}
		err := newError("Op", s, "detail")
		if !errors.Is(err, sentinel) {
			t.Errorf("status %d: the error does not match its sentinel", s)
		}
		if !strings.Contains(err.Error(), "detail") || !strings.HasPrefix(err.Error(), "purplerain: Op: ") {
			t.Errorf("message %q", err.Error())
		}
	}
	listed := map[Status]bool{}
	for _, s := range statuses {
		listed[s] = true
	}
	for s := range sentinels {
		if !listed[s] {
			t.Errorf("a sentinel for status %d, which the library does not list", s)
		}
	}
	// Number 6 was PR_ERR_SAMPLED, retired: neither the library nor the package may use it.
	if _, mapped := sentinels[6]; mapped || Status(6).String() != "PR_UNKNOWN_STATUS" {
		t.Errorf("retired status 6 is in use: %s", Status(6))
	}
	adapter := []error{ErrAdapterTransient, ErrAdapterConnection, ErrAdapterFatal, ErrAdapterBackpressure}
	for _, kind := range adapter {
		if err := (&Error{Kind: kind}); !errors.Is(err, ErrAdapter) || !errors.Is(err, kind) {
			t.Errorf("%v does not match ErrAdapter and itself", kind)
		}
	}
	if errors.Is(newError("Op", 5, ""), ErrAdapter) {
		t.Error("back-pressure matches ErrAdapter")
	}
	if err := newError("Op", 99, ""); !errors.Is(err, errUnknownStatus) || !strings.Contains(err.Error(), "99") {
		t.Errorf("unknown status: %v", err)
	}
}

// Every sentinel that input can provoke, provoked through the public API, with the library's
// message attached. Not reachable from Go, so only covered by the table test above:
//   - ErrNullArgument and ErrBufferTooSmall: the binding never passes NULL and sizes every
//     output buffer (PR_MAX_SHARDS for shard ids, count for new shards);
//   - ErrUnrouted: the library refuses to remove the last shard (ErrScaling, below), so a bus
//     always has a live shard;
//   - ErrPanic: only a bug in the library;
//   - the adapter errors: Noop and Memory never fail, and Redis/JetStream are not in the
//     library CI builds (`cargo build --release --lib`, default features), where asking for
//     them is ErrConfig (tested below).
func TestEverySentinelReachableFromBadInput(t *testing.T) {
	t.Run("InvalidJSON", func(t *testing.T) {
		_, err := New(`{"shards":`)
		e := wantErr(t, "New", err, ErrInvalidJSON)
		if e.Status != 3 || !strings.Contains(e.Message, "byte") {
			t.Errorf("message without the position: %#v", e)
		}
		b := newBus(t, memoryConfig)
		wantErr(t, "IngestJSON", b.IngestJSON([]byte(`{"a":}`)), ErrInvalidJSON)
		wantErr(t, "IngestJSON two values", b.IngestJSON([]byte(`1 2`)), ErrInvalidJSON)
		wantErr(t, "Ingest(RawMessage)", b.Ingest(json.RawMessage(`nope`)), ErrInvalidJSON)
		wantErr(t, "Ingest(chan)", b.Ingest(make(chan int)), ErrInvalidJSON)
	})
	t.Run("InvalidUTF8", func(t *testing.T) {
		_, err := New("{\"producer_nonce_path\":\"\xff\"}")
		wantErr(t, "New", err, ErrInvalidUTF8)
		b := newBus(t, memoryConfig)
		wantErr(t, "IngestJSON", b.IngestJSON([]byte("\"\xff\"")), ErrInvalidUTF8)
	})
	t.Run("Config", func(t *testing.T) {
		_, err := New(`{"shards":4,"bogus_key":1}`)
		if e := wantErr(t, "unknown key", err, ErrConfig); !strings.Contains(e.Message, "bogus_key") {
			t.Errorf("message does not name the key: %q", e.Message)
		}
		_, err = New(`{"ring_capacity":3}`)
		wantErr(t, "ring not a power of two", err, ErrConfig)
		_, err = New(`{"shards":"four"}`)
		wantErr(t, "wrong type", err, ErrConfig)
		_, err = New("{\"shards\":4}\x00")
		wantErr(t, "NUL byte", err, ErrInvalidJSON)
	})
	t.Run("Backpressure", func(t *testing.T) {
		b := newBus(t, `{"shards":1,"ring_capacity":2,"backpressure":"drop_newest","adapter":{"type":"noop"}}`)
		batch := make([][]byte, 10000)
		for i := range batch {
			batch[i] = event(i)
		}
		n, err := b.IngestRawBatch(batch)
		if e := wantErr(t, "IngestRawBatch", err, ErrBackpressure); e.Message == "" {
			t.Error("no message")
		}
		if n >= len(batch) {
			t.Fatalf("accepted %d of %d into a ring of 2", n, len(batch))
		}
		s := mustStats(t, b)
		if s.EventsIngested != uint64(n) || s.RejectedBackpressure == 0 {
			t.Fatalf("accepted %d, stats %+v", n, s)
		}
		// Single events too: a tight loop outruns the worker's wake-up well within 10000 tries.
		var single error
		for i := 0; i < 10000 && single == nil; i++ {
			single = b.IngestRaw(batch[i])
		}
		wantErr(t, "IngestRaw", single, ErrBackpressure)
	})
	t.Run("ShuttingDown", func(t *testing.T) {
		b := newBus(t, memoryConfig)
		if err := b.Shutdown(); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "IngestRaw", b.IngestRaw([]byte("x")), ErrShuttingDown)
	})
	b := newBus(t, memoryConfig)
	if err := b.IngestRaw([]byte(`{"kind":"x"}`)); err != nil {
		t.Fatal(err)
	}
	t.Run("InvalidCursor", func(t *testing.T) {
		_, err := b.Poll(PollRequest{From: "not-a-cursor!"})
		wantErr(t, "garbage", err, ErrInvalidCursor)
		page, err := b.Poll(PollRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Poll(PollRequest{From: page.Cursor[:len(page.Cursor)/2]})
		wantErr(t, "truncated", err, ErrInvalidCursor)
	})
	t.Run("InvalidFilter", func(t *testing.T) {
		_, err := b.Poll(PollRequest{Filter: map[string]any{"$bogus": 1}})
		wantErr(t, "unknown operator", err, ErrInvalidFilter)
		_, err = b.Poll(PollRequest{Filter: json.RawMessage(`{"$and":[]}`)})
		wantErr(t, "empty $and", err, ErrInvalidFilter)
		_, err = b.Poll(PollRequest{Filter: make(chan int)})
		wantErr(t, "not encodable", err, ErrInvalidFilter)
	})
	t.Run("InvalidRequest", func(t *testing.T) {
		_, err := b.Poll(PollRequest{Limit: -1})
		wantErr(t, "negative limit", err, ErrInvalidRequest)
		_, err = b.Poll(PollRequest{Shards: []uint16{999}})
		wantErr(t, "unknown shard", err, ErrInvalidRequest)
		_, err = b.Poll(PollRequest{Ordering: "sideways"})
		wantErr(t, "unknown ordering", err, ErrInvalidRequest)
	})
	t.Run("Scaling", func(t *testing.T) {
		one := newBus(t, `{"shards":1,"adapter":{"type":"memory"}}`)
		ids, err := one.ShardIDs()
		if err != nil || len(ids) != 1 {
			t.Fatalf("ShardIDs = %v, %v", ids, err)
		}
		wantErr(t, "remove the last shard", one.RemoveShards(ids), ErrScaling)
		wantErr(t, "remove an unknown shard", one.RemoveShards([]uint16{999}), ErrScaling)
		_, err = one.AddShards(0)
		wantErr(t, "add no shard", err, ErrScaling)
	})
	t.Run("InvalidArgument", func(t *testing.T) {
		n, err := b.IngestPacked([]byte("abc"), []uint32{2, 1})
		wantErr(t, "ends not ascending", err, ErrInvalidArgument)
		if n != 0 {
			t.Fatalf("accepted %d", n)
		}
		_, err = b.IngestPacked([]byte("abc"), []uint32{4})
		wantErr(t, "end past the data", err, ErrInvalidArgument)
	})
	t.Run("AdapterNotBuiltIn", func(t *testing.T) {
		_, err := New(`{"adapter":{"type":"redis","url":"redis://127.0.0.1:1"}}`)
		if err == nil {
			t.Skip("this library was built with the redis feature")
		}
		wantErr(t, "redis without the feature", err, ErrConfig)
	})
}

// The message comes from the same OS thread as the failing call, even with many goroutines
// failing differently at once and moving between threads: each error carries its own call's
// message, never another's.
func TestErrorMessagesBelongToTheirCall(t *testing.T) {
	b := newBus(t, memoryConfig)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				switch g % 3 {
				case 0:
					_, err := New(`{"bogus_key_` + string(rune('a'+g)) + `":1}`)
					if e := asError(t, err); e != nil && !strings.Contains(e.Message, "bogus_key_"+string(rune('a'+g))) {
						t.Errorf("config error with another call's message: %q", e.Message)
						return
					}
				case 1:
					_, err := b.Poll(PollRequest{From: "garbage"})
					if e := asError(t, err); e != nil && !strings.Contains(strings.ToLower(e.Message), "cursor") {
						t.Errorf("cursor error with another call's message: %q", e.Message)
						return
					}
				case 2:
					_, err := b.IngestPacked([]byte("ab"), []uint32{9})
					if e := asError(t, err); e != nil && !strings.Contains(e.Message, "data_len") {
						t.Errorf("packed error with another call's message: %q", e.Message)
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
}

func asError(t *testing.T, err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("want an *Error, got %v", err)
		return nil
	}
	return e
}
