package purplerain

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"math"
	"runtime"
	"strconv"
	"sync"
	"unsafe"
)

// Ingest accepts one JSON event: v is encoded with encoding/json (a json.RawMessage is passed
// as it is) and the library checks the bytes are one well-formed JSON value before storing
// them. Errors: ErrInvalidJSON, ErrInvalidUTF8, then as IngestRaw.
func (b *Bus) Ingest(v any) error {
	data, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return bindingError("Ingest", ErrInvalidJSON, err.Error())
		}
	}
	return b.ingestJSON("Ingest", data)
}

// IngestJSON accepts one event given as JSON text; the library validates it (UTF-8, one JSON
// value) and stores the bytes as given. Errors: ErrInvalidJSON, ErrInvalidUTF8, then as
// IngestRaw.
func (b *Bus) IngestJSON(data []byte) error {
	return b.ingestJSON("IngestJSON", data)
}

func (b *Bus) ingestJSON(op string, data []byte) error {
	h := b.h
	if !h.enter() {
		return errClosed(op)
	}
	r := C.gopr_ingest(h.bus, bytesPtr(data), C.size_t(len(data)))
	h.leave()
	runtime.KeepAlive(b)
	return check(op, r)
}

// IngestRaw accepts one event as opaque bytes, routed by their xxh3 hash. The bytes go to the
// library without a Go-side copy (the library copies them once); the caller may reuse the
// slice as soon as IngestRaw returns. An empty event is allowed. Never blocks, except in
// "block" back-pressure mode. Errors (the event was not accepted): ErrBackpressure,
// ErrShuttingDown, ErrUnrouted.
func (b *Bus) IngestRaw(event []byte) error {
	h := b.h
	if !h.enter() {
		return errClosed("IngestRaw")
	}
	r := C.gopr_ingest_raw(h.bus, bytesPtr(event), C.size_t(len(event)))
	h.leave()
	runtime.KeepAlive(b)
	return check("IngestRaw", r)
}

// IngestRawWithKey is IngestRaw routed by the hash of key instead of the event: all events with
// the same key go to the same shard and keep their order.
func (b *Bus) IngestRawWithKey(event, key []byte) error {
	h := b.h
	if !h.enter() {
		return errClosed("IngestRawWithKey")
	}
	r := C.gopr_ingest_raw_with_key(h.bus, bytesPtr(event), C.size_t(len(event)), bytesPtr(key), C.size_t(len(key)))
	h.leave()
	runtime.KeepAlive(b)
	return check("IngestRawWithKey", r)
}

// IngestPacked accepts len(ends) events packed in one buffer, in one library call and with no
// copy on the Go side: event i is data[ends[i-1]:ends[i]] with ends[-1] = 0. It stops at the
// first event the bus refuses and returns how many were accepted before it, with that event's
// error. ends must be non-decreasing and within len(data) (else ErrInvalidArgument, nothing
// accepted).
func (b *Bus) IngestPacked(data []byte, ends []uint32) (int, error) {
	h := b.h
	if !h.enter() {
		return 0, errClosed("IngestPacked")
	}
	r := C.gopr_ingest_raw_packed(h.bus, bytesPtr(data), C.size_t(len(data)), endsPtr(ends), C.size_t(len(ends)))
	h.leave()
	runtime.KeepAlive(b)
	return int(r.n), check("IngestPacked", r)
}

// packChunkBytes bounds the bytes IngestRawBatch packs per library call, and so the size of
// the pooled pack buffers; a batch of up to this many bytes (1000 events of 1 KiB) crosses
// into the library once.
const packChunkBytes = 1 << 20

// packBuf is a reusable packing buffer for IngestRawBatch.
type packBuf struct {
	data []byte
	ends []uint32
}

var packPool = sync.Pool{New: func() any { return new(packBuf) }}

// IngestRawBatch accepts events in order and returns how many were accepted; it stops at the
// first event the bus refuses, with that event's error. Go 1.19's cgo rules forbid handing C
// an array of Go pointers, so the events are copied into one pooled contiguous buffer with end
// offsets and cross into the library once per 1 MiB (once for a typical batch) through
// pr_ingest_raw_packed. The caller may reuse the slices as soon as it returns. When the events
// are already packed, IngestPacked avoids even that copy.
func (b *Bus) IngestRawBatch(events [][]byte) (int, error) {
	h := b.h
	if !h.enter() {
		return 0, errClosed("IngestRawBatch")
	}
	p := packPool.Get().(*packBuf)
	accepted, err := b.ingestBatch(p, events)
	h.leave()
	runtime.KeepAlive(b)
	if cap(p.data) <= packChunkBytes {
		packPool.Put(p)
	}
	return accepted, err
}

// ingestBatch packs and ingests events chunk by chunk; the caller has entered the handle.
func (b *Bus) ingestBatch(p *packBuf, events [][]byte) (int, error) {
	accepted := 0
	for i := 0; i < len(events); {
		first := i
		data, ends := p.data[:0], p.ends[:0]
		for ; i < len(events); i++ {
			e := events[i]
			if len(ends) > 0 && len(data)+len(e) > packChunkBytes {
				break
			}
			if uint64(len(data))+uint64(len(e)) > math.MaxUint32 {
				break // only an event of 4 GiB or more, alone: sent by itself below
			}
			data = append(data, e...)
			ends = append(ends, uint32(len(data)))
		}
		p.data, p.ends = data, ends
		var r C.gopr_ret
		if len(ends) == 0 {
			// A single event too large for 32-bit offsets.
			r = C.gopr_ingest_raw(b.h.bus, bytesPtr(events[i]), C.size_t(len(events[i])))
			if r.status == C.PR_OK {
				r.n = 1
			}
			i++
		} else {
			r = C.gopr_ingest_raw_packed(b.h.bus, bytesPtr(data), C.size_t(len(data)), endsPtr(ends), C.size_t(len(ends)))
		}
		accepted += int(r.n)
		if err := check("IngestRawBatch", r); err != nil {
			if e, ok := err.(*Error); ok && first > 0 {
				e.Message = "in the part of the batch starting at event " + strconv.Itoa(first) + ": " + e.Message
			}
			return accepted, err
		}
	}
	return accepted, nil
}

// endsPtr is the address of the first offset for C, or nil for none (a []uint32 holds no Go
// pointers, so it may be passed).
func endsPtr(ends []uint32) *C.uint32_t {
	if len(ends) == 0 {
		return nil
	}
	return (*C.uint32_t)(unsafe.Pointer(&ends[0]))
}
