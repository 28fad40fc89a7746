//! Fuzzes the Net adapter's frame decoder and record reader: arbitrary plaintext into the
//! message decoder, arbitrary insecure-mode wire bytes, and genuinely sealed streams with bits
//! flipped, cut short or a replay appended. Every input must end in messages or an error (never
//! a panic or an unbounded allocation); a tampered stream must be refused; an untouched one
//! must read as its plaintext decodes (`purple_rain::adapter::net::fuzzing::fuzz_frames`).
//!
//! Run with `cargo fuzz run net_frame` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use purple_rain::adapter::net::fuzzing::fuzz_frames;

fuzz_target!(|data: &[u8]| fuzz_frames(data));
