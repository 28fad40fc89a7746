//! Fuzzes config parsing: `EventBusConfig::from_json` must return (never panic) on any text,
//! and a config it accepts must read back equal from its own JSON.
//!
//! Run with `cargo fuzz run config_json` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use purple_rain::EventBusConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = EventBusConfig::from_json(text) else {
        return;
    };
    let again = EventBusConfig::from_json(&config.to_json()).expect("a config's own JSON is valid");
    assert_eq!(again, config);
});
