//! `PURPLE_RAIN_LOG=<level>` writes the library's tracing events to stderr (how C, Go, Node and
//! Python hosts read them, without callbacks); unset, nothing is written. Each case runs in a
//! child process (this test binary again, running `child` only), since the subscriber is
//! process-wide and installed once.

use purple_rain::{AdapterConfig, EventBus, EventBusConfig, RawEvent};
use std::process::Command;

/// Run by the parent in a child process; does nothing when run directly.
#[test]
fn child() {
    if std::env::var_os("PURPLE_RAIN_LOG_TEST_CHILD").is_none() {
        return;
    }
    purple_rain::runtime::wait(async {
        let config = EventBusConfig::builder().shards(2).adapter(AdapterConfig::memory()).build().unwrap();
        let bus = EventBus::new(config).await.unwrap();
        bus.ingest_raw(RawEvent::from_bytes(&b"{}"[..])).unwrap();
        bus.add_shards(1).await.unwrap();
        bus.shutdown().await.unwrap();
    });
}

fn run_child(level: Option<&str>) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", "child", "--nocapture", "--test-threads=1"]).env("PURPLE_RAIN_LOG_TEST_CHILD", "1");
    match level {
        Some(level) => command.env("PURPLE_RAIN_LOG", level),
        None => command.env_remove("PURPLE_RAIN_LOG"),
    };
    let out = command.output().unwrap();
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn info_level_writes_scaling_and_shutdown_to_stderr() {
    let stderr = run_child(Some("info"));
    assert!(stderr.contains("scaling: shards added"), "{stderr}");
    assert!(stderr.contains("shutdown complete"), "{stderr}");
    assert!(stderr.contains("INFO") && stderr.contains("purple_rain"), "level and target shown: {stderr}");
}

#[test]
fn unset_or_a_higher_level_writes_nothing_of_these() {
    for level in [None, Some("warn"), Some("off")] {
        let stderr = run_child(level);
        assert!(!stderr.contains("purple_rain"), "{level:?}: {stderr}");
    }
}
