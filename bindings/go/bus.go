package purplerain

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Bus is a running event bus in the library, behind its C handle. All methods are safe for
// concurrent use, including Close racing with any other call.
//
// Lifetime: Shutdown drains and stops the bus but keeps the handle (later calls return
// ErrShuttingDown, Stats keeps working). Close shuts down and releases the handle and
// everything the library holds for it (for the Memory adapter: the retained events). A Bus
// that becomes unreachable without Close is closed by a finalizer, off the finalizer goroutine.
type Bus struct {
	h *handle
}

// closedBit marks a handle that accepts no new calls; the bits below it count calls in flight.
const closedBit = int64(1) << 62

// handle owns the C pointer and decides when it may be freed.
//
// pr_bus_free needs the caller to guarantee that no other thread is inside a call on the bus.
// A lock would give that but would serialise or slow every ingest, so instead every call
// enters (one atomic add), checks the closed bit, and leaves (one atomic add): Close sets the
// closed bit, so new calls fail with ErrShuttingDown without touching C, and whoever brings
// the in-flight count to zero after that frees the handle — Close itself, or the last call
// still running when Close returned. The freed flag makes the free happen exactly once even
// when a refused call's leave also sees the count at zero.
type handle struct {
	bus   C.uintptr_t // the pr_bus pointer (C memory); never changes; valid while entered
	state atomic.Int64
	freed atomic.Bool

	closeOnce sync.Once
	closeErr  error      // the shutdown's result, for every Close/Shutdown after it
	final     C.pr_stats // counters read after shutdown, before the free
	finalErr  error
}

// enter registers a call; false means the handle is closed and must not be used.
func (h *handle) enter() bool {
	if h.state.Add(1)&closedBit != 0 {
		h.leave()
		return false
	}
	return true
}

// leave ends a call; the last one out of a closed handle frees it.
func (h *handle) leave() {
	if h.state.Add(-1) == closedBit && h.freed.CompareAndSwap(false, true) {
		// Nobody is inside a call and nobody can enter: this is the one free.
		C.gopr_bus_free(h.bus)
		if hook := freeHook.Load(); hook != nil {
			(*hook)(h)
		}
	}
}

// freeHook, when set (by tests), is called after each handle is freed.
var freeHook atomic.Pointer[func(*handle)]

// close runs once per handle (Close, or the finalizer): it closes the handle to new calls,
// shuts the bus down, keeps the final counters and lets the last call out free the handle.
func (h *handle) close() {
	h.closeOnce.Do(func() {
		// Close to new calls and hold the handle through the shutdown, in one step: the bit
		// is set only here, once, so adding it cannot carry into anything.
		h.state.Add(closedBit | 1)
		h.closeErr = check("Close", C.gopr_shutdown(h.bus))
		h.finalErr = check("Stats", C.gopr_stats(h.bus, &h.final))
		h.leave()
	})
}

// closing returns whether Close has begun; if so it waits for Close's shutdown to complete,
// after which closeErr and final may be read.
func (h *handle) closing() bool {
	if h.state.Load()&closedBit == 0 {
		return false
	}
	h.closeOnce.Do(func() {}) // returns once the running close has finished
	return true
}

// New creates and starts a bus from a JSON config in the shape of the project README, e.g.
// `{"shards":4,"adapter":{"type":"memory"}}`; "" gives the library defaults (4 shards, the
// Noop adapter, which discards events). Errors: ErrInvalidJSON, ErrInvalidUTF8, ErrConfig (the
// message names the key) or an adapter error.
func New(configJSON string) (*Bus, error) {
	if v := ABIVersion(); v != HeaderABIVersion {
		return nil, bindingError("New", ErrConfig, "library ABI version "+strconv.FormatUint(uint64(v), 10)+
			" differs from the header's "+strconv.FormatUint(uint64(HeaderABIVersion), 10))
	}
	if strings.IndexByte(configJSON, 0) >= 0 {
		return nil, bindingError("New", ErrInvalidJSON, "config contains a NUL byte")
	}
	var cConfig *C.char
	if configJSON != "" {
		cConfig = C.CString(configJSON)
		defer C.free(unsafe.Pointer(cConfig))
	}
	r := C.gopr_bus_new(cConfig)
	if err := check("New", r); err != nil {
		return nil, err
	}
	b := &Bus{h: &handle{bus: C.uintptr_t(uintptr(r.ptr))}}
	runtime.SetFinalizer(b, (*Bus).finalize)
	return b, nil
}

// finalize closes a Bus nobody closed. Shutdown drains the rings and flushes the adapter, which
// can take a while, so it runs on its own goroutine rather than holding up the finalizer
// goroutine (which runs every finalizer of the program, one at a time).
func (b *Bus) finalize() {
	go b.h.close()
}

// Flush is a barrier: it returns once every event accepted before the call has reached the
// adapter (or been counted dropped) and the adapter has flushed. After it returns nil,
// EventsDispatched + EventsDropped == EventsIngested as of the call.
func (b *Bus) Flush() error {
	h := b.h
	if !h.enter() {
		return errClosed("Flush")
	}
	err := check("Flush", C.gopr_flush(h.bus))
	h.leave()
	runtime.KeepAlive(b)
	return err
}

// FlushReport is what FlushContext saw.
type FlushReport struct {
	// Undelivered is 0 after a completed flush; when the context ended first, the events
	// accepted and not yet delivered or dropped at that moment. They stay queued.
	Undelivered uint64
	// Dropped counts the events dropped (evicted, retry budget spent, fatal adapter error)
	// since the previous FlushContext returned. Each drop is reported once; Flush reports
	// nothing and so leaves its drops to the next FlushContext.
	Dropped uint64
	// Lossy is Dropped > 0: something accepted will never be delivered.
	Lossy bool
}

// flushSlice bounds each wait of FlushContext when ctx can be cancelled, so a cancel is seen
// within about this long (a cgo call cannot be interrupted).
const flushSlice = 100 * time.Millisecond

// FlushContext is Flush with a deadline and a report of losses: it returns once every event
// accepted before the call has reached the adapter (or been counted dropped) and the adapter
// has flushed, with the drops since the previous FlushContext. If ctx is done first (its
// deadline passed, or it was cancelled: seen within about 100 ms), it returns an error wrapping
// ErrTimeout and a report whose Undelivered events stay queued; nothing is cancelled, and a
// later flush waits for them again. context.Background() waits without a deadline. On other
// errors (ErrShuttingDown, an adapter error) the report holds the drops already counted.
func (b *Bus) FlushContext(ctx context.Context) (FlushReport, error) {
	h := b.h
	if !h.enter() {
		return FlushReport{}, errClosed("FlushContext")
	}
	defer func() {
		h.leave()
		runtime.KeepAlive(b)
	}()
	var total FlushReport
	for {
		if err := ctx.Err(); err != nil {
			total.Lossy = total.Dropped > 0
			return total, &Error{Op: "FlushContext", Status: Status(C.PR_ERR_TIMEOUT), Kind: ErrTimeout,
				Message: err.Error() + "; " + strconv.FormatUint(total.Undelivered, 10) + " events still queued"}
		}
		wait := uint64(math.MaxUint64)
		if ctx.Done() != nil {
			slice := flushSlice
			if deadline, ok := ctx.Deadline(); ok {
				if left := time.Until(deadline); left < slice {
					slice = left
				}
			}
			// Round up, so a deadline is never cut short; a past one still makes one attempt.
			wait = uint64((slice + time.Millisecond - 1) / time.Millisecond)
			if slice <= 0 {
				wait = 0
			}
		}
		var report C.pr_flush_report
		r := C.gopr_flush_timeout(h.bus, C.uint64_t(wait), &report)
		total.Dropped += uint64(report.dropped)
		total.Lossy = total.Dropped > 0
		switch r.status {
		case C.PR_OK:
			total.Undelivered = 0
			return total, nil
		case C.PR_ERR_TIMEOUT:
			total.Undelivered = uint64(report.undelivered)
			if r.msg != nil {
				C.free(unsafe.Pointer(r.msg))
			}
		default:
			return total, check("FlushContext", r)
		}
	}
}

// Shutdown drains, flushes and stops the bus. Idempotent, also concurrently: every call returns
// after the one shutdown completed, with its result. Afterwards ingest, poll, flush and scaling
// return ErrShuttingDown, while Stats and ShardCount keep working; Close still releases the
// handle.
func (b *Bus) Shutdown() error {
	h := b.h
	if !h.enter() {
		h.closing()
		return h.closeErr
	}
	err := check("Shutdown", C.gopr_shutdown(h.bus))
	h.leave()
	runtime.KeepAlive(b)
	return err
}

// Close shuts the bus down (as Shutdown) and releases it. Idempotent and safe to call
// concurrently with every other method: calls that start after Close began return
// ErrShuttingDown, calls already inside the library finish first (a long poll is woken by the
// shutdown), and the last of them releases the handle. Every Close returns the shutdown's
// result. Stats keeps returning the final counters after Close.
func (b *Bus) Close() error {
	runtime.SetFinalizer(b, nil)
	b.h.close()
	runtime.KeepAlive(b)
	return b.h.closeErr
}

// errClosed is the error of a call made after Close began.
func errClosed(op string) error {
	return bindingError(op, ErrShuttingDown, "the bus was closed")
}
