//! Progress bars for long work, shown only to a person watching a terminal.
//!
//! The bar goes to stderr, and only when stderr is a terminal and stdout is not a pipe: a
//! command whose output feeds another program is part of a script, and a bar would only add
//! control codes to its logs.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Whether progress is drawn.
pub fn visible() -> bool {
    std::io::stderr().is_terminal() && !stdout_is_pipe()
}

#[cfg(unix)]
fn stdout_is_pipe() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(not(unix))]
fn stdout_is_pipe() -> bool {
    !std::io::stdout().is_terminal()
}

/// A counter (`{doing}: 12,345 {what}`) with its rate and elapsed time, or a hidden bar. It
/// ticks by itself, so a stalled input shows as a stalled count, not a frozen screen.
pub fn counter(doing: &str, what: &str) -> ProgressBar {
    if !visible() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    let template = format!("{{spinner}} {doing}: {{human_pos}} {what}  {{per_sec}}  {{elapsed}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
