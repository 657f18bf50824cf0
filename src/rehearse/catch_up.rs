//! A store snapshot a deploy took predates that deploy's migrations: the
//! newest snapshot is one deploy behind production. Rehearsed as it is, the
//! estimate would count migrations production already has. When the
//! deploy that took the snapshot left its migrations applied, and they are
//! the first pending on the copy, they are applied here first, timed apart
//! and left out of the window; otherwise the rehearsal says what it counts.

use crate::cancel::Cancel;
use crate::config::Config;
use crate::db::ConnInfo;
use crate::deploy::journal;
use crate::migrate::migrator::{Migrator, RunOptions};
use crate::snapshot::Manifest;
use crate::store::{ObjectStore, Store};

/// What the deploy that took the snapshot did, as its report in the store
/// says.
struct TakenBy {
    deploy_id: String,
    release: Option<String>,
    /// The versions it left applied; empty when it rolled back.
    applied: Vec<String>,
}

/// The catch-up's result, for the report's step.
pub struct CaughtUp {
    /// How many migrations were applied before the rehearsed deploy.
    pub applied: usize,
    /// What the step says.
    pub detail: String,
}

/// Applies what the snapshot's own deploy applied, when that can be known;
/// `None` when the snapshot was not taken by a deploy (nothing to say).
pub async fn run(
    config: &Config,
    store: Option<&Store>,
    manifest: Option<&Manifest>,
    copy: &ConnInfo,
    cancel: &Cancel,
) -> Result<Option<CaughtUp>, crate::error::BoxError> {
    let (Some(store), Some(manifest)) = (store, manifest) else {
        return Ok(None);
    };
    let Some(deploy_id) = &manifest.deploy_id else {
        return Ok(None);
    };
    let Some(taken_by) = read(store, deploy_id).await else {
        return Ok(Some(CaughtUp {
            applied: 0,
            detail: format!(
                "the snapshot predates deploy {deploy_id}, whose report is not in the store: every pending migration is rehearsed and counted"
            ),
        }));
    };
    let deploy = match &taken_by.release {
        Some(release) => format!("deploy {} (release {release})", taken_by.deploy_id),
        None => format!("deploy {}", taken_by.deploy_id),
    };
    if taken_by.applied.is_empty() {
        return Ok(Some(CaughtUp {
            applied: 0,
            detail: format!("the snapshot predates {deploy}, which left no migration applied"),
        }));
    }
    let migrator = Migrator::new(&config.migrations, copy);
    if config.migrations.command.is_some() {
        return Ok(Some(CaughtUp {
            applied: 0,
            detail: format!(
                "the snapshot predates {deploy}, which applied {} migration(s); with an external migrator they are rehearsed again and counted",
                taken_by.applied.len()
            ),
        }));
    }
    let planned = migrator.plan().await?;
    let pending: Vec<&String> = planned.pending.iter().map(|p| &p.version).collect();
    let applied: Vec<&String> = taken_by.applied.iter().collect();
    let n = applied.len();
    if !pending.starts_with(&applied) {
        return Ok(Some(CaughtUp {
            applied: 0,
            detail: format!(
                "the snapshot predates {deploy}, which applied {}; they are not the first pending here, so every pending migration is rehearsed and counted",
                taken_by.applied.join(", ")
            ),
        }));
    }
    let options = RunOptions {
        limit: Some(n),
        release_id: taken_by.release.clone(),
        ..RunOptions::default()
    };
    migrator.run(&options, cancel).await?;
    Ok(Some(CaughtUp {
        applied: n,
        detail: format!(
            "the snapshot predates {deploy}: its {n} migration(s) ({}), which production already has, were applied first and are not counted",
            taken_by.applied.join(", ")
        ),
    }))
}

/// The deploy's report from the store; `None` when it cannot be read.
async fn read(store: &Store, deploy_id: &str) -> Option<TakenBy> {
    let bytes = store.get(&journal::report_key(deploy_id)).await.ok()?;
    let report: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let outcome = report["outcome"].as_str()?;
    // What a rolled-back deploy applied is gone from production.
    let left_applied = matches!(
        outcome,
        "succeeded" | "offsite_incomplete" | "accepted_current"
    );
    let applied = if left_applied {
        report["migrations"]
            .as_array()?
            .iter()
            .filter_map(|m| m["version"].as_str().map(str::to_owned))
            .collect()
    } else {
        Vec::new()
    };
    Some(TakenBy {
        deploy_id: deploy_id.to_owned(),
        release: report["release"].as_str().map(str::to_owned),
        applied,
    })
}
