//! Fuzzes the Net adapter's Noise handshake, as initiator and responder, against a pretend peer:
//! raw bytes, or a peer with the cluster key or another, pinned or not, whose messages are
//! flipped, cut short or extended. Every such handshake must fail cleanly, an untouched one with
//! the right key and an accepted identity must succeed, and none may hang
//! (`purple_rain::adapter::net::fuzzing::fuzz_handshake`).
//!
//! The runtime's clock is paused: with nothing else to do it jumps to the next timer, so a
//! handshake stuck waiting would end at once in its timeout, which the check reports.
//!
//! Run with `cargo fuzz run net_handshake` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use purple_rain::adapter::net::fuzzing::fuzz_handshake;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(fuzz_handshake(data));
});
