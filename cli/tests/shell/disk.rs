//! `--disk DIR`: the durable log in a directory, written by one process and read by others.

use crate::support::{bin, json_lines, run, run_ok, text, wait_until, Watchdog};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn a_file_produced_into_a_disk_log_comes_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let log = log.to_str().unwrap();
    let lines = json_lines(3000);

    run_ok(&["produce", "--disk", log, "--shards", "1"], &lines);
    let consumed = run_ok(&["consume", "--disk", log, "--format", "payload"], b"");
    assert!(consumed.stdout == lines, "the consumed file differs from the produced one");
    let stats = run_ok(&["stats", "--disk", log, "--format", "json"], b"");
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["events"], 3000);
}

#[test]
fn consume_reads_a_disk_log_while_its_writer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let log = log.to_str().unwrap();
    // The writer holds the log's lock for as long as its stdin stays open.
    let mut writer =
        bin().args(["produce", "--disk", log]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _watchdog = Watchdog::arm(&writer, Duration::from_secs(60));
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(&json_lines(100)).unwrap();
    stdin.flush().unwrap();

    // Until the writer has created the log, a reader finds no log to open.
    let count = || {
        let out = run(&["consume", "--disk", log, "--format", "payload"], b"");
        if out.status.success() {
            text(&out.stdout).lines().count()
        } else {
            0
        }
    };
    wait_until("the reader to see the writer's 100 events", Duration::from_secs(30), || count() == 100);

    drop(stdin);
    let out = writer.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
