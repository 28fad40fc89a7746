//! The progress bar, seen on a real terminal: `produce` runs in a tmux pane whose output is
//! logged byte for byte (`pipe-pane`), so a bar that was drawn and then cleared is still on
//! record, and the summary line marks the end of the run.

use crate::support::{json_lines, redis_config, text, wait_until};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A tmux server of this test's own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str) -> Self {
        let tmux = Self { socket: format!("prcli_{name}_{}", std::process::id()) };
        tmux.run(&["new-session", "-d", "-s", "t", "-x", "160", "-y", "40", "sh"]);
        tmux
    }

    fn run(&self, args: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .status()
            .expect("tmux runs (the test command installs it)");
        assert!(status.success(), "tmux {args:?} failed");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

/// Runs `shell_command` in a fresh pane and returns everything it wrote to the terminal,
/// once `end` appears in it.
fn on_terminal(name: &str, shell_command: &str, end: &str, log: &Path) -> String {
    let tmux = Tmux::start(name);
    tmux.run(&["pipe-pane", "-o", "-t", "t", &format!("cat >> '{}'", log.display())]);
    tmux.run(&["send-keys", "-t", "t", shell_command, "Enter"]);
    let read = || std::fs::read(log).map(|b| text(&b)).unwrap_or_default();
    wait_until(&format!("{end:?} on the terminal"), Duration::from_secs(60), || read().contains(end));
    read()
}

#[test]
fn the_progress_bar_shows_on_a_terminal_and_not_when_stdout_is_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, json_lines(20_000)).unwrap();
    let bin = env!("CARGO_BIN_EXE_purple-rain");
    let produce = |test: &str| format!("{bin} produce --config-json '{}' '{}'", redis_config(test, 2), input.display());

    let shown = on_terminal("tty", &produce("tty"), "accepted 20000 events", &dir.path().join("tty.log"));
    assert!(shown.contains("producing: "), "no progress bar on the terminal:\n{shown}");

    let piped = on_terminal(
        "pipe",
        &format!("{} | cat", produce("pipe")),
        "accepted 20000 events",
        &dir.path().join("pipe.log"),
    );
    assert!(!piped.contains("producing: "), "a progress bar although stdout is a pipe:\n{piped}");
}
