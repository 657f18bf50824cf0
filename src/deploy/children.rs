//! The deploy's child processes, recorded beside the journal while the
//! steps and the rollback run.

use super::journal;
use crate::error::chain;
use crate::store::Store;

/// Runs `work` while keeping `deploys/<id>/children.json` equal to the
/// process groups of snapguard's children, so that `recover` can end a
/// hook that outlived a killed runner. The work is never dropped: the loop
/// ends only when it does.
pub(crate) async fn recording_children<F: std::future::Future>(
    store: &Store,
    deploy_id: &str,
    work: F,
) -> F::Output {
    let mut changes = crate::process::group::changes();
    let mut written = Vec::new();
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            Ok(()) = changes.changed() => {
                let now = crate::process::group::live_groups();
                if now != written {
                    if let Err(e) = journal::save_children(store, deploy_id, &now).await {
                        tracing::warn!(error = %chain(&e), "cannot record the child processes beside the journal");
                    }
                    written = now;
                }
            }
        }
    }
}
