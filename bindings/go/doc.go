// Package purplerain is the Go binding of Purple Rain, a sharded event bus written in Rust,
// over its C ABI (include/purple_rain.h) with cgo.
//
// A Bus accepts events (Ingest, IngestRaw, IngestRawBatch, IngestPacked), hashes each to a
// shard and returns; per-shard workers in the library hand them to an adapter in batches. Poll
// reads pages back from the adapter with an opaque cursor: passing each response's Cursor as
// the next request's From never repeats and never skips an event. Use the Memory adapter
// (`{"adapter":{"type":"memory"}}`) for an in-process log to poll from; the default Noop
// adapter discards.
//
//	bus, err := purplerain.New(`{"shards":4,"adapter":{"type":"memory"}}`)
//	if err != nil { ... }
//	defer bus.Close()
//	_ = bus.IngestRaw([]byte(`{"kind":"click"}`))
//	_ = bus.Flush()
//	page, err := bus.Poll(purplerain.PollRequest{Limit: 100})
//
// Every method is safe for concurrent use, and no Go-side lock is held around calls: Close
// may race with any of them (see Bus). Errors are *Error values wrapping one sentinel per
// failure kind (ErrBackpressure, ErrShuttingDown, ErrInvalidCursor, ...), for errors.Is, with
// the library's message.
//
// Building needs the library, found with pkg-config (`#cgo pkg-config: purple_rain`): an
// installed copy (scripts/install.sh --prefix DIR, then PKG_CONFIG_PATH=DIR/lib/pkgconfig unless
// pkg-config already searches there), or, in this checkout, `cargo build --release --lib` and
// PKG_CONFIG_PATH=<repository>/bindings/go/pkgconfig. README.md has both.
package purplerain
