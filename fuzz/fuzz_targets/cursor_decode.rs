//! Fuzzes `Cursor::decode`: it must never panic, and whatever it accepts must survive a
//! round trip. The encoding is canonical, so accepted text must also re-encode to itself
//! (the empty string excepted: it is the documented alias of the start cursor).
//!
//! Run with `cargo fuzz run cursor_decode` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use purple_rain::consume::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cursor) = Cursor::decode(text) else {
        return;
    };
    let encoded = cursor.encode();
    assert!(text.is_empty() || encoded == text, "{text:?} decoded to {cursor:?}, which encodes to {encoded:?}");
    let again = Cursor::decode(&encoded);
    assert_eq!(again.as_ref(), Ok(&cursor), "{encoded:?} did not decode back");
});
