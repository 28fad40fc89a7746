//! Every failure prints one line naming its cause and exits with the code `--help` documents.

use crate::support::{free_port, json_lines, redis_config, run, text};
use std::process::Output;

/// Asserts the exit code and that stderr is one `error:` line containing every `needle`.
fn fails(out: &Output, code: i32, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    for needle in needles {
        assert!(errors[0].contains(needle), "{needle:?} missing from {:?}", errors[0]);
    }
}

#[test]
fn help_documents_every_exit_code() {
    for command in
        [&["--help"][..], &["produce", "--help"], &["consume", "--help"], &["stats", "--help"], &["bench", "--help"]]
    {
        let out = run(command, b"");
        assert_eq!(out.status.code(), Some(0));
        let help = text(&out.stdout);
        for line in [
            "0    success",
            "3    bad config",
            "4    bad filter",
            "5    broker unreachable",
            "6    produce",
            "130  interrupted",
        ] {
            assert!(help.contains(line), "{command:?} help lacks {line:?}");
        }
    }
}

#[test]
fn bad_config_names_the_key_or_flag_and_exits_3() {
    fails(&run(&["consume", "--config-json", r#"{"shards":0}"#], b""), 3, &["--config-json", "shards"]);
    fails(&run(&["consume", "--config-json", r#"{"shard":2}"#], b""), 3, &["shard"]);
    fails(&run(&["consume", "--config-json", "{not json"], b""), 3, &["not JSON"]);
    fails(&run(&["consume", "--redis", "redis://127.0.0.1:6379", "--shards", "0"], b""), 3, &["--shards"]);
    fails(&run(&["consume", "--redis", "http://127.0.0.1:6379"], b""), 3, &["--redis"]);
    fails(&run(&["produce", "--config", "/nonexistent/cfg.json"], b""), 3, &["/nonexistent/cfg.json"]);
}

#[test]
fn bad_filter_or_cursor_exits_4() {
    let config = redis_config("badrequest", 1);
    fails(&run(&["consume", "--config-json", &config, "--filter", r#"{"$and":[]}"#], b""), 4, &["--filter", "$and"]);
    fails(&run(&["consume", "--config-json", &config, "--filter", "{"], b""), 4, &["--filter", "not JSON"]);
    fails(&run(&["consume", "--config-json", &config, "--from", "garbage!"], b""), 4, &["--from", "invalid cursor"]);
}

#[test]
fn an_unreachable_broker_exits_5() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    fails(&run(&["produce", "--redis", &url], &json_lines(3)), 5, &["cannot start the adapter"]);
    fails(&run(&["consume", "--redis", &url], b""), 5, &["cannot start the adapter"]);
}

#[test]
fn lines_that_are_not_json_are_counted_and_exit_6() {
    let config = redis_config("notjson", 1);
    let out = run(&["produce", "--config-json", &config], b"{\"a\":1}\nnot json\n{\"a\":2}\n\n{\"a\":\n");
    fails(&out, 6, &["2 not JSON", "stdin:2"]);
    assert!(text(&out.stderr).contains("accepted 2 events"), "{}", text(&out.stderr));
}

#[test]
fn a_missing_input_file_exits_1_before_connecting() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    fails(&run(&["produce", "--redis", &url, "/nonexistent/in.jsonl"], b""), 1, &["/nonexistent/in.jsonl"]);
}

#[test]
fn a_raw_record_cut_short_exits_1_after_storing_the_whole_ones() {
    let config = redis_config("rawcut", 1);
    let out = run(&["produce", "--config-json", &config, "--format", "raw"], b"\0\0\0\x02ok\0\0\0\x09short");
    fails(&out, 1, &["record 2", "5 of 9 bytes"]);
    assert!(text(&out.stderr).contains("accepted 1 events"), "{}", text(&out.stderr));
}
