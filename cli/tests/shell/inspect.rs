//! `stats` and `bench`: what they count is what was stored.

use crate::support::{bin, cursor, json_lines, redis_config, run, run_ok, text};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[test]
fn stats_counts_retained_events_and_a_cursors_lag() {
    let config = redis_config("stats", 2);
    run_ok(&["produce", "--config-json", &config], &json_lines(300));

    let all = json(&run_ok(&["stats", "--config-json", &config, "--format", "json"], b"").stdout);
    assert_eq!(all["events"], 300);
    assert_eq!(all["counted"], "retained");
    let per_shard: u64 = all["shards"].as_array().unwrap().iter().map(|s| s["events"].as_u64().unwrap()).sum();
    assert_eq!(per_shard, 300);

    let consumed = run_ok(&["consume", "--config-json", &config, "--limit", "120"], b"");
    let lag =
        run_ok(&["stats", "--config-json", &config, "--cursor", &cursor(&consumed), "--format", "prometheus"], b"");
    let total: u64 = text(&lag.stdout)
        .lines()
        .filter(|l| l.starts_with("purple_rain_consumer_lag_events{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 180);
    assert!(text(&lag.stdout).contains("# TYPE purple_rain_consumer_lag_events gauge"));
}

#[test]
fn stats_watch_reports_again_with_the_new_events_until_ctrl_c() {
    let config = redis_config("watch", 1);
    run_ok(&["produce", "--config-json", &config], &json_lines(10));
    let mut child = bin()
        .args(["stats", "--config-json", &config, "--format", "json", "--watch", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _watchdog = crate::support::Watchdog::arm(&child, std::time::Duration::from_secs(60));
    let mut reports = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = json(reports.next().unwrap().unwrap().as_bytes());
    assert_eq!(first["events"], 10);
    run_ok(&["produce", "--config-json", &config], &json_lines(5));
    // Reports keep coming; one of them sees the five new events.
    let seen = reports.by_ref().take(600).map(|r| json(r.unwrap().as_bytes())).find(|r| r["events"] == 15);
    assert!(seen.is_some(), "no report counted the new events");

    crate::support::interrupt(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a watch normally");
}

#[test]
fn bench_reports_ingest_and_poll_of_every_event() {
    let out = run(&["bench", "--events", "5k", "--size", "64", "--producers", "2"], b"");
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        table.contains("memory adapter, 4 shards, block back-pressure, 5000 events of 64 B, 2 producer(s)"),
        "{table}"
    );
    for row in ["| ingest (per call) | 5000 |", "| ingest + flush | 5000 |", "| poll (per page of 10000) | 5000 |"] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
}
