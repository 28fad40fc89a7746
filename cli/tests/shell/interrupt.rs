//! Ctrl-C (SIGINT) during `produce`: what was accepted is flushed, the summary says so, and the
//! exit code is 130.

use crate::support::{bin, json_lines, redis_config, run_ok, text, wait_until};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn sigint_during_produce_flushes_what_was_accepted_and_reports_it() {
    let config = redis_config("sigint", 2);
    // stdin stays open: without the signal this produce would never end.
    let mut child =
        bin().args(["produce", "--config-json", &config]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _watchdog = crate::support::Watchdog::arm(&child, Duration::from_secs(60));
    let mut stdin = child.stdin.take().unwrap();
    let lines = json_lines(3000);
    let (first, rest) = lines.split_at(lines.iter().position(|&b| b == b'\n').unwrap() + 1);
    stdin.write_all(first).unwrap();
    stdin.flush().unwrap();
    // The first event is readable, so the process is past its start and handles SIGINT.
    let stored =
        || text(&run_ok(&["consume", "--config-json", &config, "--format", "payload"], b"").stdout).lines().count();
    wait_until("the first event", Duration::from_secs(20), || stored() == 1);

    // More events, then the signal at once: some may still be in the bus when it arrives.
    stdin.write_all(rest).unwrap();
    stdin.flush().unwrap();
    crate::support::interrupt(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");

    let summary = stderr.lines().find(|l| l.starts_with("interrupted: accepted")).unwrap_or_else(|| panic!("{stderr}"));
    let accepted: usize = summary["interrupted: accepted ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(summary.contains(&format!("stored {accepted}, rejected 0, dropped 0, not flushed 0")), "{summary}");
    // Everything accepted is in Redis, once: a prefix of the input (each shard keeps its order).
    let consumed = run_ok(&["consume", "--config-json", &config, "--format", "payload"], b"");
    let mut got: Vec<String> = text(&consumed.stdout).lines().map(str::to_owned).collect();
    let mut want: Vec<String> = text(&lines).lines().take(accepted).map(str::to_owned).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}
