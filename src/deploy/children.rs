//! The deploy's child processes, recorded beside the journal while the
//! steps and the rollback run.

use super::journal;
use crate::error::chain;
use crate::process::group::GroupRecord;
use crate::store::Store;

/// Runs `work` while keeping `deploys/<id>/children.json` equal to the
/// process groups of snapguard's children, so that `recover` can end a
/// hook that outlived a killed runner. The work is never dropped: the loop
/// ends only when it does. Nor does it wait for the record: a slow or
/// unreachable store (each failed write is retried for seconds) must not
/// hold up a step or a rollback, so one write runs at a time beside the
/// work, and changes made meanwhile are written when it ends.
pub(crate) async fn recording_children<F: std::future::Future>(
    store: &Store,
    deploy_id: &str,
    work: F,
) -> F::Output {
    let mut changes = crate::process::group::changes();
    let mut written: Vec<GroupRecord> = Vec::new();
    let mut work = std::pin::pin!(work);
    let mut writing = None;
    let mut stale = false;
    loop {
        if writing.is_none() && stale {
            stale = false;
            let now = crate::process::group::live_groups();
            if now != written {
                writing = Some(Box::pin(async move {
                    let result = journal::save_children(store, deploy_id, &now).await;
                    (now, result)
                }));
            }
        }
        tokio::select! {
            biased;
            out = &mut work => return out,
            (now, result) = async { writing.as_mut().expect("guarded").await }, if writing.is_some() => {
                writing = None;
                match result {
                    Ok(()) => written = now,
                    Err(e) => tracing::warn!(error = %chain(&e), "cannot record the child processes beside the journal"),
                }
            }
            Ok(()) = changes.changed() => stale = true,
        }
    }
}
