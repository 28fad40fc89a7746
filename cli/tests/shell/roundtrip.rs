//! Events go in with `produce` and come back out with `consume`, each exactly once.

use crate::support::{cursor, json_lines, redis_config, run_ok, text};
use std::collections::BTreeMap;

#[test]
fn a_file_produced_into_redis_comes_back_byte_for_byte() {
    let config = redis_config("file", 1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let lines = json_lines(5000);
    std::fs::write(&input, &lines).unwrap();

    let produced = run_ok(&["produce", "--config-json", &config, input.to_str().unwrap()], b"");
    let summary = text(&produced.stderr);
    assert!(summary.contains("accepted 5000 events"), "{summary}");
    assert!(summary.contains("stored 5000, rejected 0, dropped 0, not flushed 0"), "{summary}");

    let consumed = run_ok(&["consume", "--config-json", &config, "--format", "payload"], b"");
    assert!(consumed.stdout == lines, "the consumed file differs from the produced one");

    // Exactly once: resuming from the final cursor finds nothing more.
    let again = run_ok(&["consume", "--config-json", &config, "--from", &cursor(&consumed)], b"");
    assert!(again.stdout.is_empty(), "events repeated: {}", text(&again.stdout));
}

#[test]
fn raw_records_round_trip_with_any_bytes() {
    let config = redis_config("raw", 1);
    let payloads: Vec<Vec<u8>> = (0..300u32).map(|i| [b"bin\n\0\xff".as_slice(), &i.to_le_bytes()].concat()).collect();
    let framed: Vec<u8> =
        payloads.iter().flat_map(|p| [(p.len() as u32).to_be_bytes().as_slice(), p].concat()).collect();

    run_ok(&["produce", "--config-json", &config, "--format", "raw"], &framed);
    let consumed = run_ok(&["consume", "--config-json", &config, "--format", "raw"], b"");
    assert!(consumed.stdout == framed, "raw records changed on the way");
}

#[test]
fn keyed_events_over_several_shards_arrive_once_in_key_order() {
    let config = redis_config("keyed", 4);
    run_ok(&["produce", "--config-json", &config, "--key-field", "user"], &json_lines(2000));

    let consumed = run_ok(&["consume", "--config-json", &config, "--format", "jsonl"], b"");
    let mut per_user: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut shards_per_user: BTreeMap<String, u64> = BTreeMap::new();
    for line in text(&consumed.stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let user = event["payload"]["user"].as_str().unwrap().to_owned();
        per_user.entry(user.clone()).or_default().push(event["payload"]["n"].as_u64().unwrap());
        let shard = event["shard"].as_u64().unwrap();
        assert_eq!(*shards_per_user.entry(user).or_insert(shard), shard, "one key went to two shards");
    }
    let mut all: Vec<u64> = per_user.values().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..2000).collect::<Vec<_>>(), "every event exactly once");
    for (user, ns) in &per_user {
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "{user}'s events out of order");
    }
    let shards: std::collections::BTreeSet<_> = shards_per_user.values().collect();
    assert!(shards.len() > 1, "five keys all on one shard of four: routing ignored the key");
}

#[test]
fn a_filter_selects_exactly_the_matching_events() {
    let config = redis_config("filter", 2);
    run_ok(&["produce", "--config-json", &config], &json_lines(1000));

    let filter = r#"{"$and":[{"path":"kind","value":"click"},{"$lt":{"path":"n","value":100}}]}"#;
    let consumed = run_ok(&["consume", "--config-json", &config, "--filter", filter], b"");
    let mut ns: Vec<u64> = text(&consumed.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["payload"]["n"].as_u64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..100).step_by(2).collect::<Vec<_>>());
}

#[test]
fn resuming_from_the_printed_cursor_has_no_gap_and_no_repeat() {
    let config = redis_config("resume", 3);
    let lines = json_lines(250);
    run_ok(&["produce", "--config-json", &config], &lines);

    let mut seen = Vec::new();
    let mut from = String::new();
    for _ in 0..4 {
        let mut args = vec!["consume", "--config-json", &config, "--format", "payload", "--limit", "70"];
        if !from.is_empty() {
            args.extend(["--from", &from]);
        }
        let out = run_ok(&args, b"");
        seen.extend(text(&out.stdout).lines().map(str::to_owned));
        from = cursor(&out);
    }
    seen.sort();
    let mut expected: Vec<String> = text(&lines).lines().map(str::to_owned).collect();
    expected.sort();
    assert_eq!(seen, expected, "four pages of 70 must hold the 250 events exactly once");
}

#[test]
fn a_cursor_file_resumes_each_run_where_the_last_one_stopped() {
    let config = redis_config("cursorfile", 2);
    let lines = json_lines(100);
    run_ok(&["produce", "--config-json", &config], &lines);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cursor");
    let file = file.to_str().unwrap();

    let mut seen = Vec::new();
    for expected in [40, 40, 20, 0] {
        let out = run_ok(
            &["consume", "--config-json", &config, "--format", "payload", "--limit", "40", "--cursor-file", file],
            b"",
        );
        let got: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        assert_eq!(got.len(), expected);
        assert!(!text(&out.stderr).contains("cursor:"), "the cursor goes to the file, not stderr");
        seen.extend(got);
    }
    seen.sort();
    let mut all: Vec<String> = text(&lines).lines().map(str::to_owned).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn from_end_skips_what_is_stored_and_its_cursor_sees_what_comes_next() {
    let config = redis_config("fromend", 2);
    run_ok(&["produce", "--config-json", &config], &json_lines(50));
    let at_end = run_ok(&["consume", "--config-json", &config, "--from-end"], b"");
    assert!(at_end.stdout.is_empty(), "--from-end printed old events: {}", text(&at_end.stdout));

    let newer = b"{\"late\":1}\n{\"late\":2}\n";
    run_ok(&["produce", "--config-json", &config], newer);
    let out = run_ok(&["consume", "--config-json", &config, "--format", "payload", "--from", &cursor(&at_end)], b"");
    let mut got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["{\"late\":1}", "{\"late\":2}"]);
}

#[test]
fn follow_prints_new_events_as_they_arrive_and_ctrl_c_leaves_a_resumable_cursor() {
    use std::io::{BufRead, BufReader};
    let config = redis_config("follow", 2);
    run_ok(&["produce", "--config-json", &config], &json_lines(10));
    let mut child = crate::support::bin()
        .args(["consume", "--config-json", &config, "--format", "payload", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _watchdog = crate::support::Watchdog::arm(&child, std::time::Duration::from_secs(60));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let old: Vec<String> = lines.by_ref().take(10).map(Result::unwrap).collect();
    assert_eq!(old.len(), 10);
    run_ok(&["produce", "--config-json", &config], b"{\"new\":1}\n{\"new\":2}\n{\"new\":3}\n");
    let mut new: Vec<String> = lines.by_ref().take(3).map(Result::unwrap).collect();
    new.sort();
    assert_eq!(new, ["{\"new\":1}", "{\"new\":2}", "{\"new\":3}"]);

    crate::support::interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "Ctrl-C ends a follow normally: {}", text(&out.stderr));
    let again = run_ok(&["consume", "--config-json", &config, "--from", &cursor(&out)], b"");
    assert!(again.stdout.is_empty(), "the cursor after Ctrl-C repeats events: {}", text(&again.stdout));
}
