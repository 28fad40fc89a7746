//! Running the binary and reading what it printed.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `purple-rain` binary Cargo built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_purple-rain"))
}

/// A Redis config with stream names no other test (or run) uses.
pub fn redis_config(test: &str, shards: u16) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let prefix = format!("prcli_{test}_{}_{nanos:08x}", std::process::id());
    format!(
        r#"{{"shards":{shards},"adapter":{{"type":"redis","url":"redis://127.0.0.1:6379","stream_prefix":"{prefix}"}}}}"#
    )
}

/// Runs `purple-rain args...` with `stdin` as its input, to completion.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).expect("stdin accepts the input");
    drop(input);
    child.wait_with_output().expect("the binary finishes")
}

/// Like [`run`], and asserts it succeeded.
pub fn run_ok(args: &[&str], stdin: &[u8]) -> Output {
    let out = run(args, stdin);
    assert_eq!(out.status.code(), Some(0), "purple-rain {args:?} failed: {}", text(&out.stderr));
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The cursor `consume` printed on stderr.
pub fn cursor(out: &Output) -> String {
    let stderr = text(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("cursor: "))
        .unwrap_or_else(|| panic!("no cursor in stderr: {stderr}"))
        .to_owned()
}

/// `n` JSON lines, each different, with a `kind` of click or view.
pub fn json_lines(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"n\":{i},\"kind\":\"{}\",\"user\":\"u{}\"}}\n", ["click", "view"][i % 2], i % 5))
        .collect::<String>()
        .into_bytes()
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Polls `condition` until it holds or `limit` passes (then panics with `what`).
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT (Ctrl-C) to `child`.
pub fn interrupt(child: &std::process::Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the child has not
    // been waited for, so its pid still names it.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "kill -INT {pid}: {}", std::io::Error::last_os_error());
}

/// Kills `child` (SIGKILL) if it is still running after `limit`, so a test whose process hangs
/// fails instead of hanging the suite. Dropping the guard disarms it.
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    pub fn arm(child: &std::process::Child, limit: Duration) -> Self {
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        let (disarm, disarmed) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(limit) {
                eprintln!("watchdog: killing pid {pid} after {limit:?}");
                // SAFETY: plain integers; the test still owns the unreaped child, so the pid
                // names it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        Self(Some(disarm))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(disarm) = self.0.take() {
            let _ = disarm.send(());
        }
    }
}
