package purplerain

/*
#include "shim.h"
*/
import "C"

import (
	"runtime"
	"strconv"
	"unsafe"
)

// Stats are the bus counters. After Flush returns nil, and after Shutdown or Close,
// EventsDispatched + EventsDropped == EventsIngested, exactly.
type Stats struct {
	// EventsIngested counts events accepted by ingest calls.
	EventsIngested uint64
	// EventsDropped counts accepted events that will never reach the adapter (all causes: the
	// Dropped* fields).
	EventsDropped uint64
	// BatchesDispatched counts batches the adapter accepted.
	BatchesDispatched uint64
	// EventsDispatched counts events the adapter accepted.
	EventsDispatched uint64
	// ShutdownWasLossy is set by shutdown if any accepted event was dropped.
	ShutdownWasLossy bool
	// DroppedEvicted: evicted from a full ring (drop_oldest).
	DroppedEvicted uint64
	// DroppedAdapterFatal: in batches the adapter rejected with a non-retryable error.
	DroppedAdapterFatal uint64
	// DroppedRetryExhausted: in batches whose retries ran out.
	DroppedRetryExhausted uint64
	// DroppedLost: lost because a shard worker died.
	DroppedLost uint64
	// RejectedBackpressure counts events refused with ErrBackpressure (never ingested).
	RejectedBackpressure uint64
	// BlockedWaits counts the times a producer waited for room ("block").
	BlockedWaits uint64
	// Retries counts batch retries after retryable adapter errors.
	Retries uint64
	// EventsTrimmed counts events the adapter discarded for retention (dispatched first).
	EventsTrimmed uint64
}

func statsFromC(s *C.pr_stats) Stats {
	return Stats{
		EventsIngested:        uint64(s.events_ingested),
		EventsDropped:         uint64(s.events_dropped),
		BatchesDispatched:     uint64(s.batches_dispatched),
		EventsDispatched:      uint64(s.events_dispatched),
		ShutdownWasLossy:      bool(s.shutdown_was_lossy),
		DroppedEvicted:        uint64(s.dropped_evicted),
		DroppedAdapterFatal:   uint64(s.dropped_adapter_fatal),
		DroppedRetryExhausted: uint64(s.dropped_retry_exhausted),
		DroppedLost:           uint64(s.dropped_lost),
		RejectedBackpressure:  uint64(s.rejected_backpressure),
		BlockedWaits:          uint64(s.blocked_waits),
		Retries:               uint64(s.retries),
		EventsTrimmed:         uint64(s.events_trimmed),
	}
}

// Stats reads the counters (lock-free in the library). It works after Shutdown, and after
// Close it returns the final counters read when Close shut the bus down.
func (b *Bus) Stats() (Stats, error) {
	h := b.h
	if !h.enter() {
		h.closing()
		return statsFromC(&h.final), h.finalErr
	}
	var s C.pr_stats
	r := C.gopr_stats(h.bus, &s)
	h.leave()
	runtime.KeepAlive(b)
	if err := check("Stats", r); err != nil {
		return Stats{}, err
	}
	return statsFromC(&s), nil
}

// StatsJSON returns every figure as one JSON document: totals (the Stats fields in snake case,
// plus events_pending, workers_running and shards), one object per shard and the adapter's own
// figures, in the schema README.md documents ("Monitoring"; pr_stats_json). Works after
// Shutdown; after Close it returns an error wrapping ErrShuttingDown.
func (b *Bus) StatsJSON() ([]byte, error) { return b.statsText("StatsJSON", false) }

// StatsPrometheus returns the same figures in the Prometheus text exposition format (0.0.4),
// ready to serve as a /metrics response (pr_stats_prometheus).
func (b *Bus) StatsPrometheus() ([]byte, error) { return b.statsText("StatsPrometheus", true) }

func (b *Bus) statsText(op string, prometheus bool) ([]byte, error) {
	h := b.h
	if !h.enter() {
		return nil, errClosed(op)
	}
	flag := C.int(0)
	if prometheus {
		flag = 1
	}
	r := C.gopr_stats_text(h.bus, flag)
	h.leave()
	runtime.KeepAlive(b)
	if err := check(op, r); err != nil {
		return nil, err
	}
	text := C.GoBytes(r.ptr, C.int(r.n))
	C.pr_string_free((*C.char)(r.ptr))
	return text, nil
}

// ShardIDs returns the live shard ids, ascending. Works after Shutdown.
func (b *Bus) ShardIDs() ([]uint16, error) {
	h := b.h
	if !h.enter() {
		return nil, errClosed("ShardIDs")
	}
	ids := make([]uint16, maxShards)
	r := C.gopr_shard_ids(h.bus, u16Ptr(ids), C.size_t(len(ids)))
	h.leave()
	runtime.KeepAlive(b)
	if err := check("ShardIDs", r); err != nil {
		return nil, err
	}
	return ids[:int(r.n):int(r.n)], nil
}

// ShardCount returns the number of live shards. Works after Shutdown.
func (b *Bus) ShardCount() (int, error) {
	ids, err := b.ShardIDs()
	return len(ids), err
}

// AddShards adds count running shards and returns their ids (never reused within the bus's
// life). Errors: ErrScaling (count 0, past the config's max_shards), ErrShuttingDown.
func (b *Bus) AddShards(count uint16) ([]uint16, error) {
	h := b.h
	if !h.enter() {
		return nil, errClosed("AddShards")
	}
	ids := make([]uint16, int(count))
	r := C.gopr_add_shards(h.bus, C.uint16_t(count), u16Ptr(ids), C.size_t(len(ids)))
	h.leave()
	runtime.KeepAlive(b)
	if err := check("AddShards", r); err != nil {
		return nil, err
	}
	return ids[:int(r.n)], nil
}

// RemoveShards stops routing to the given shards, drains their queued events to the adapter
// (they stay pollable) and returns after the drain. Errors: ErrScaling (unknown or duplicate
// shard, the last shard, below min_shards), ErrShuttingDown.
func (b *Bus) RemoveShards(ids []uint16) error {
	h := b.h
	if !h.enter() {
		return errClosed("RemoveShards")
	}
	r := C.gopr_remove_shards(h.bus, u16Ptr(ids), C.size_t(len(ids)))
	h.leave()
	runtime.KeepAlive(b)
	return check("RemoveShards", r)
}

// ScalingAction is what SuggestScaling recommends.
type ScalingAction uint32

const (
	// ScalingNone keeps the shard set.
	ScalingNone ScalingAction = C.PR_SCALING_NONE
	// ScalingUp adds Count shards.
	ScalingUp ScalingAction = C.PR_SCALING_UP
	// ScalingDown removes the shards in ShardIDs.
	ScalingDown ScalingAction = C.PR_SCALING_DOWN
)

// String names the action: "none", "up" or "down".
func (a ScalingAction) String() string {
	switch a {
	case ScalingNone:
		return "none"
	case ScalingUp:
		return "up"
	case ScalingDown:
		return "down"
	}
	return "ScalingAction(" + strconv.FormatUint(uint64(a), 10) + ")"
}

// ScalingDecision is a scaling recommendation.
type ScalingDecision struct {
	Action ScalingAction
	// Count is the number of shards to add (ScalingUp) or remove (ScalingDown).
	Count int
	// ShardIDs are the shards to remove for ScalingDown; nil otherwise.
	ShardIDs []uint16
}

// SuggestScaling recommends a change from the load measured since the previous call, within
// the config's scaling bounds. Applying it (AddShards, RemoveShards) is up to the caller unless
// the config's scaling policy has "auto": true.
func (b *Bus) SuggestScaling() (ScalingDecision, error) {
	h := b.h
	if !h.enter() {
		return ScalingDecision{}, errClosed("SuggestScaling")
	}
	d := new(C.pr_scaling_decision) // 2 KiB: on the heap rather than copied around
	r := C.gopr_suggest_scaling(h.bus, d)
	h.leave()
	runtime.KeepAlive(b)
	if err := check("SuggestScaling", r); err != nil {
		return ScalingDecision{}, err
	}
	out := ScalingDecision{Action: ScalingAction(d.action), Count: int(d.count)}
	if out.Action == ScalingDown {
		out.ShardIDs = make([]uint16, out.Count)
		for i := range out.ShardIDs {
			out.ShardIDs[i] = uint16(d.shard_ids[i])
		}
	}
	return out, nil
}

// u16Ptr is the address of the first id for C, or nil for none ([]uint16 holds no Go pointers).
func u16Ptr(ids []uint16) *C.uint16_t {
	if len(ids) == 0 {
		return nil
	}
	return (*C.uint16_t)(unsafe.Pointer(&ids[0]))
}
