//! Ctrl-C: the first one asks the running command to stop cleanly (flush, summary, cursor); a
//! second one, while that clean stop is still waiting, exits at once.

use crate::exit::INTERRUPTED;
use tokio::sync::watch;

/// Whether Ctrl-C was pressed; cheap to clone and to query from any thread.
#[derive(Clone)]
pub struct Interrupt(watch::Receiver<bool>);

impl Interrupt {
    /// Starts listening for SIGINT. Must be called inside the tokio runtime.
    pub fn install() -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return; // No signal handling on this platform: Ctrl-C keeps its default effect.
            }
            let _ = tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("error: interrupted twice: exiting without waiting for the flush");
                std::process::exit(i32::from(INTERRUPTED));
            }
        });
        Self(rx)
    }

    /// Whether Ctrl-C was pressed.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once Ctrl-C is pressed.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|set| *set).await.is_err() {
            // The listener is gone (no signal support): never resolve.
            std::future::pending::<()>().await;
        }
    }
}
