//! Cancellation by SIGINT / SIGTERM.
//!
//! CI systems cancel a job by signalling it and killing it a few seconds
//! later. The first signal asks the running command to stop at its next safe
//! point and clean up (abort an upload, drop a partial database); later
//! signals are only logged, so cleanup is never cut short by a second Ctrl-C.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A handle that resolves once cancellation was requested.
#[derive(Clone)]
pub struct Cancel(watch::Receiver<bool>);

impl Cancel {
    /// Listens for SIGINT and SIGTERM on the current runtime.
    pub fn on_signals() -> Cancel {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("cannot listen for signals; a cancelled job will not clean up");
                return;
            };
            let mut count = 0u32;
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                count += 1;
                if count == 1 {
                    tracing::warn!(
                        signal = name,
                        "cancelling: stopping at the next safe point and cleaning up"
                    );
                    let _ = tx.send(true);
                } else {
                    tracing::warn!(
                        signal = name,
                        "still cleaning up; not stopping before it is done"
                    );
                }
            }
        });
        Cancel(rx)
    }

    /// A handle that never cancels: for the rollback, which must finish
    /// whatever signals come (they are still logged by [`Cancel::on_signals`]).
    pub fn never() -> Cancel {
        let (_tx, rx) = watch::channel(false);
        Cancel(rx)
    }

    /// Whether cancellation was requested, for checks between steps.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until cancellation is requested. If nothing can request it any
    /// more (the sender is gone), waits forever rather than cancelling.
    pub async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
