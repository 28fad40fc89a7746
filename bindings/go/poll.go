package purplerain

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// Ordering is the order of a page's events.
type Ordering string

const (
	// OrderingSequence gives each shard's events in sequence order (the default).
	OrderingSequence Ordering = "sequence"
	// OrderingTimestamp merges shards by (timestamp, shard, sequence).
	OrderingTimestamp Ordering = "timestamp"
)

// PollRequest selects a page of events. The zero value reads up to 100 events from the start.
type PollRequest struct {
	// Limit is the most events to return; 0 means the library default (100).
	Limit int
	// From is the Cursor of the previous response; "" starts at the beginning.
	From string
	// Filter is a MongoDB-style filter as JSON: a json.RawMessage, or any value encoding/json
	// encodes to one, e.g. map[string]any{"path": "kind", "value": "click"}. nil matches all.
	Filter any
	// Ordering is OrderingSequence (default when "") or OrderingTimestamp.
	Ordering Ordering
	// Shards restricts the page to these shard ids; nil reads every shard.
	Shards []uint16
	// Wait, when positive and nothing is available, makes Poll wait up to this long for new
	// events (long poll; rounded up to whole milliseconds). Shutdown or Close ends the wait
	// with ErrShuttingDown.
	Wait time.Duration
}

// PollResponse is a page of events.
type PollResponse struct {
	// Events in the requested order.
	Events []Event
	// Cursor continues after these events: pass it as From. Never a repeat, never a skip.
	Cursor string
	// HasMore reports that a selected shard holds events past Cursor not examined yet.
	HasMore bool
	// Missed counts events the cursor had not reached that retention trimmed before this poll.
	Missed uint64

	payloads []byte // the page's payload bytes, reused by PollInto
}

// Event is one stored event.
type Event struct {
	// ID is the adapter's position, e.g. "2-17" in the Memory adapter.
	ID string
	// Shard the event was routed to.
	Shard uint16
	// Sequence is per shard, strictly increasing, never reused.
	Sequence uint64
	// TimestampNs is the ingestion wall clock in ns since the Unix epoch.
	TimestampNs uint64
	// Origin is the node that ingested the event (the Net adapter's node id); 0 from adapters
	// that do not know nodes.
	Origin uint64
	// Payload is the exact bytes ingested. The payloads of one page share one backing array:
	// keeping one payload keeps the page's payload bytes alive (copy it to keep it alone).
	Payload []byte
}

// requestJSON is the wire form of a PollRequest (the spec's request JSON), NUL-terminated.
func (req *PollRequest) requestJSON() ([]byte, error) {
	buf := make([]byte, 0, 96+len(req.From))
	buf = append(buf, '{')
	sep := func() {
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
	}
	if req.Limit != 0 {
		buf = append(buf, `"limit":`...)
		buf = strconv.AppendInt(buf, int64(req.Limit), 10)
	}
	if req.From != "" {
		sep()
		from, err := json.Marshal(req.From)
		if err != nil {
			return nil, bindingError("Poll", ErrInvalidCursor, err.Error())
		}
		buf = append(append(buf, `"from":`...), from...)
	}
	if req.Filter != nil {
		filter, err := json.Marshal(req.Filter)
		if err != nil {
			return nil, bindingError("Poll", ErrInvalidFilter, err.Error())
		}
		sep()
		buf = append(append(buf, `"filter":`...), filter...)
	}
	if req.Ordering != "" {
		ordering, _ := json.Marshal(string(req.Ordering)) // a string always encodes
		sep()
		buf = append(append(buf, `"ordering":`...), ordering...)
	}
	if req.Shards != nil {
		sep()
		buf = append(buf, `"shards":[`...)
		for i, s := range req.Shards {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendUint(buf, uint64(s), 10)
		}
		buf = append(buf, ']')
	}
	if req.Wait > 0 {
		sep()
		ms := (req.Wait + time.Millisecond - 1) / time.Millisecond
		buf = append(buf, `"wait_ms":`...)
		buf = strconv.AppendInt(buf, int64(ms), 10)
	}
	return append(buf, '}', 0), nil
}

// Poll reads a page of events. The library call and the reading of every event view happen in
// one cgo crossing; the page is then copied into Go memory (one allocation for all payloads,
// one for all ids) and the library's result freed. Errors: ErrInvalidCursor, ErrInvalidFilter,
// ErrInvalidRequest, ErrShuttingDown, adapter errors.
func (b *Bus) Poll(req PollRequest) (*PollResponse, error) {
	resp := new(PollResponse)
	if err := b.poll("Poll", &req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// PollInto is Poll writing into resp and reusing its memory: the Events slice and the buffer
// behind the payloads of the previous page read into resp. For consumers that are done with a
// page before they poll the next: it saves allocating (and collecting) about 170 bytes per
// event. The previous page's Payload slices are overwritten; IDs stay valid.
func (b *Bus) PollInto(req PollRequest, resp *PollResponse) error {
	return b.poll("PollInto", &req, resp)
}

func (b *Bus) poll(op string, req *PollRequest, resp *PollResponse) error {
	request, err := req.requestJSON()
	if err != nil {
		err.(*Error).Op = op
		return err
	}
	h := b.h
	if !h.enter() {
		return errClosed(op)
	}
	// request is a []byte (no Go pointers) that C reads only during the call.
	r := C.gopr_poll(h.bus, (*C.char)(unsafe.Pointer(&request[0])))
	h.leave()
	runtime.KeepAlive(b)
	if err := check(op, r); err != nil {
		return err
	}
	// The page owns its events (it does not borrow from the bus), so it is read after leave.
	readPage((*C.gopr_page)(r.ptr), resp)
	C.gopr_page_free(C.uintptr_t(uintptr(r.ptr)))
	return nil
}

// idPool holds scratch buffers for a page's ids, which become one string per page.
var idPool = sync.Pool{New: func() any { return new([]byte) }}

// readPage copies a page out of C memory into resp in one pass over the events, reusing
// resp.Events and resp.payloads when they are large enough: at most three allocations (events,
// payloads, ids).
func readPage(page *C.gopr_page, resp *PollResponse) {
	n := int(page.len)
	resp.Cursor = C.GoStringN(page.cursor, C.int(page.cursor_len))
	resp.HasMore = bool(page.has_more)
	resp.Missed = uint64(page.missed)
	events := resp.Events[:0]
	if n == 0 {
		resp.Events = events
		return
	}
	if cap(events) < n {
		events = make([]Event, n)
	}
	events = events[:n]
	payloads := resp.payloads
	if total := int(page.payload_bytes); cap(payloads) < total {
		payloads = make([]byte, total)
	}
	scratch := idPool.Get().(*[]byte)
	ids := append((*scratch)[:0], make([]byte, int(page.id_bytes))...)
	views := unsafe.Slice(page.events, n)
	p, q := 0, 0
	for i := range views {
		v := &views[i]
		e := &events[i]
		l := int(v.payload_len)
		if l > 0 {
			copy(payloads[p:p+l], unsafe.Slice((*byte)(unsafe.Pointer(v.payload)), l))
		}
		e.Payload = payloads[p : p+l : p+l]
		p += l
		q += copy(ids[q:], unsafe.Slice((*byte)(unsafe.Pointer(v.id)), int(v.id_len)))
		e.Shard = uint16(v.shard)
		e.Sequence = uint64(v.sequence)
		e.TimestampNs = uint64(v.timestamp_ns)
		e.Origin = uint64(v.origin)
	}
	// One string for every id of the page; each ID is a substring of it.
	all := string(ids)
	*scratch = ids
	idPool.Put(scratch)
	q = 0
	for i := range views {
		l := int(views[i].id_len)
		events[i].ID = all[q : q+l]
		q += l
	}
	resp.Events = events
	resp.payloads = payloads
}
