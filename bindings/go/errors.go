package purplerain

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"strconv"
)

// Status is a pr_status number of the C ABI. Numbers are fixed forever; 0 is success.
type Status uint32

// String is the C name of the status, e.g. "PR_ERR_BACKPRESSURE".
func (s Status) String() string { return statusName(s) }

// The sentinels, one per failure kind of the library: its error kinds, which are also the C
// statuses and the Node codes.
// Every error the package returns wraps exactly one of them: test with errors.Is. The
// finer adapter errors (ErrAdapterTransient, ErrAdapterConnection, ErrAdapterFatal,
// ErrAdapterBackpressure) also match ErrAdapter.
var (
	// ErrNullArgument: a required pointer was NULL. The binding never passes one; seeing it
	// means a bug in the binding.
	ErrNullArgument = errors.New("null argument")
	// ErrInvalidUTF8: a config, request or JSON event is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrInvalidJSON: a config, request or JSON event is not well-formed JSON, or a value
	// given to Ingest cannot be encoded as JSON.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrConfig: the config is JSON but not a valid config (unknown key, wrong type, value out
	// of range, adapter not built into the library); the message names the key.
	ErrConfig = errors.New("invalid config")
	// ErrBackpressure: the shard's ring is full in drop_newest mode; the event was not accepted.
	ErrBackpressure = errors.New("back-pressure: ring full, event not accepted")
	// ErrUnrouted: no live shard could take the event (not accepted).
	ErrUnrouted = errors.New("no live shard for the event")
	// ErrShuttingDown: the bus is shutting down, was shut down, or was closed.
	ErrShuttingDown = errors.New("bus is shutting down")
	// ErrInvalidCursor: the request's From cursor is damaged or not from this library.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrInvalidFilter: the request's Filter is not a valid filter.
	ErrInvalidFilter = errors.New("invalid filter")
	// ErrInvalidRequest: the poll request is invalid (negative limit, unknown shard, ...).
	ErrInvalidRequest = errors.New("invalid poll request")
	// ErrAdapter: the adapter failed; the four errors below are finer kinds of it.
	ErrAdapter = errors.New("adapter failure")
	// ErrAdapterTransient: the adapter failed temporarily; retrying may succeed.
	ErrAdapterTransient = errors.New("adapter failure (transient)")
	// ErrAdapterConnection: the connection to the adapter's backend failed.
	ErrAdapterConnection = errors.New("adapter connection failure")
	// ErrAdapterFatal: the adapter failed permanently.
	ErrAdapterFatal = errors.New("adapter failure (fatal)")
	// ErrAdapterBackpressure: the adapter's backend is full; retry later.
	ErrAdapterBackpressure = errors.New("adapter back-pressure")
	// ErrScaling: a scaling call failed (unknown shard, the last shard, out of bounds).
	ErrScaling = errors.New("scaling failed")
	// ErrPanic: the library panicked inside the call (caught; the bus may still be usable).
	ErrPanic = errors.New("library panic")
	// ErrInvalidArgument: an argument has an invalid value (e.g. packed ends out of order).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrBufferTooSmall: an output buffer was too small. The binding sizes every buffer, so
	// seeing it means a bug in the binding.
	ErrBufferTooSmall = errors.New("buffer too small")
	// ErrTimeout: FlushContext's context was done (deadline or cancel) before the flush
	// completed. Nothing was cancelled: the undelivered events stay queued and keep being
	// delivered; the returned FlushReport says how many.
	ErrTimeout = errors.New("timed out")
	// ErrDiskCorrupt: the disk log holds a damaged record in the middle of the log (the
	// message names the file and offset); reopen with "repair": true to truncate there. Also
	// matches ErrAdapter.
	ErrDiskCorrupt = errors.New("disk log corrupt")
	// ErrDiskLocked: the disk log's directory is in use by another process (the message names
	// its pid) or another bus. Also matches ErrAdapter.
	ErrDiskLocked = errors.New("disk log locked")
)

// sentinels maps every failure status of the header to its sentinel, by the header's own
// constants. TestEveryStatusMapsToItsOwnSentinel checks it against the library's list of
// statuses (pr_status_ALL): a status without a sentinel here, or a sentinel for a status the
// library does not have, fails it.
var sentinels = map[Status]error{
	C.PR_ERR_NULL_ARGUMENT:        ErrNullArgument,
	C.PR_ERR_INVALID_UTF8:         ErrInvalidUTF8,
	C.PR_ERR_INVALID_JSON:         ErrInvalidJSON,
	C.PR_ERR_CONFIG:               ErrConfig,
	C.PR_ERR_BACKPRESSURE:         ErrBackpressure,
	C.PR_ERR_UNROUTED:             ErrUnrouted,
	C.PR_ERR_SHUTTING_DOWN:        ErrShuttingDown,
	C.PR_ERR_INVALID_CURSOR:       ErrInvalidCursor,
	C.PR_ERR_INVALID_FILTER:       ErrInvalidFilter,
	C.PR_ERR_INVALID_REQUEST:      ErrInvalidRequest,
	C.PR_ERR_ADAPTER:              ErrAdapter,
	C.PR_ERR_ADAPTER_TRANSIENT:    ErrAdapterTransient,
	C.PR_ERR_ADAPTER_CONNECTION:   ErrAdapterConnection,
	C.PR_ERR_ADAPTER_FATAL:        ErrAdapterFatal,
	C.PR_ERR_ADAPTER_BACKPRESSURE: ErrAdapterBackpressure,
	C.PR_ERR_SCALING:              ErrScaling,
	C.PR_ERR_PANIC:                ErrPanic,
	C.PR_ERR_INVALID_ARGUMENT:     ErrInvalidArgument,
	C.PR_ERR_BUFFER_TOO_SMALL:     ErrBufferTooSmall,
	C.PR_ERR_TIMEOUT:              ErrTimeout,
	C.PR_ERR_DISK_CORRUPT:         ErrDiskCorrupt,
	C.PR_ERR_DISK_LOCKED:          ErrDiskLocked,
}

// errUnknownStatus wraps a status number this package does not know (a newer library).
var errUnknownStatus = errors.New("unknown status")

// Error is what every failing call returns: the operation, the library's status and its
// message (which key, byte offset, event index or shard was at fault).
type Error struct {
	// Op is the method that failed, e.g. "IngestRaw".
	Op string
	// Status is the library's status; 0 when the binding itself refused the call (for
	// example a call after Close), in which case Kind alone tells what happened.
	Status Status
	// Kind is the sentinel this error wraps.
	Kind error
	// Message is the library's pr_last_error_message() for the call, or the binding's own.
	Message string
}

func newError(op string, status Status, msg string) *Error {
	kind, known := sentinels[status]
	if !known {
		kind = errUnknownStatus
	}
	return &Error{Op: op, Status: status, Kind: kind, Message: msg}
}

// bindingError is an error raised by the binding itself, wrapping kind, with no library status.
func bindingError(op string, kind error, msg string) *Error {
	return &Error{Op: op, Kind: kind, Message: msg}
}

func (e *Error) Error() string {
	s := "purplerain: " + e.Op + ": " + e.Kind.Error()
	if e.Kind == errUnknownStatus {
		s += " " + strconv.FormatUint(uint64(e.Status), 10)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the sentinel, so errors.Is(err, ErrBackpressure) works.
func (e *Error) Unwrap() error { return e.Kind }

// Is makes the finer adapter errors also match ErrAdapter.
func (e *Error) Is(target error) bool {
	if target != ErrAdapter {
		return false
	}
	switch e.Kind {
	case ErrAdapterTransient, ErrAdapterConnection, ErrAdapterFatal, ErrAdapterBackpressure, ErrDiskCorrupt, ErrDiskLocked:
		return true
	}
	return false
}
