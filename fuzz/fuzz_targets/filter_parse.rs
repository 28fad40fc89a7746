//! Fuzzes filter parsing and matching.
//!
//! `Filter::parse` must return (never panic, never overflow the stack) on any
//! text. A filter it accepts must then match without panicking, against the
//! input bytes themselves and a few fixed payloads; must match no payload
//! that is not JSON; and must read back equal from its own JSON.
//!
//! Run with `cargo fuzz run filter_parse` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use purple_rain::filter::Filter;

/// Payloads every accepted filter is also run against.
const PAYLOADS: &[&[u8]] = &[
    br#"{"user":{"id":42,"name":"user-42"},"kind":"click","ts":1700000000000,"tags":["a","b"]}"#,
    br#"{"a":{"b":[1,2.5,{"c":null}]},"a":{"d":"dup"},"s":"\u00e9\"x"}"#,
    br#"[0,{"0":[true,false]},"x"]"#,
    b"18446744073709551615",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(text) else {
        return;
    };
    let _ = filter.matches(data);
    for payload in PAYLOADS {
        let _ = filter.matches(payload);
    }
    assert!(!filter.matches(b"{\"a\":1} trailing"));
    assert!(!filter.matches(b"{\"a\":\"\xff\"}"));
    let again = Filter::from_json(filter.as_json()).expect("a filter's own JSON is valid");
    assert_eq!(again, filter);
});
