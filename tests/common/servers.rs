//! Ports and names that no other test (or run) uses.

use std::net::TcpListener;

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("no free port")
}

/// A key or stream prefix no other test (or run) uses.
pub fn unique_prefix(test: &str) -> String {
    format!("prt_{test}_{}_{:08x}", std::process::id(), fastrand::u32(..))
}
