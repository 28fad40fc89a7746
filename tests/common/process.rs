//! Child processes a test drives through their standard streams.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};

/// Starts `command` with piped stdin and stdout: the child, its stdin, and the lines it writes
/// to stdout, read on a thread of their own as they come (the channel closes with its stdout).
pub fn spawn_piped(command: &mut Command) -> (Child, ChildStdin, Receiver<String>) {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("the child starts");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    (child, stdin, lines)
}
