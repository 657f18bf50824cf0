//! `snapguard prune`: what the retention and the unfinished deploys allow
//! to delete, printed, then deleted unless `--dry-run`.

use super::open_store;
use crate::config::{Config, Provider};
use crate::db;
use crate::error::Error;
use crate::prune;
use crate::snapshot::rds::Rds;

/// `snapguard prune` (`rds`: `--rds`).
pub async fn prune(config: &Config, dry_run: bool, rds: bool, json: bool) -> Result<(), Error> {
    let info = config.database_url()?;
    let store = open_store(config).await?;
    let admin = db::connect(&info.with_dbname(&config.database.maintenance_db))
        .await
        .map_err(|e| Error::nothing_changed("prune", e))?;
    let protected = crate::deploy::journal::protected(&store)
        .await
        .map_err(|e| Error::nothing_changed("prune", e))?;
    let plan = prune::plan(
        &store,
        &admin,
        info.dbname(),
        config.snapshot.retention,
        &protected,
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| Error::nothing_changed("prune", e))?;
    let rds_plan = rds_plan(config, rds, &protected).await?;
    if !json {
        print_plan(&plan, config, dry_run);
        print_rds_plan(rds_plan.as_ref(), rds, dry_run);
    }
    if !dry_run {
        prune::execute(&store, &admin, &plan)
            .await
            .map_err(|e| Error::failed("prune", e))?;
        if let (true, Some(plan)) = (rds, &rds_plan) {
            for (id, _) in &plan.delete {
                plan.client
                    .delete_snapshot(id)
                    .await
                    .map_err(|e| Error::failed("prune", e))?;
            }
        }
    }
    // The JSON comes once the deletions are done (or, with `--dry-run`,
    // says what they would be), so it never claims what did not happen.
    if json {
        super::print_json(&serde_json::json!({
            "dry_run": dry_run,
            "snapshots": plan.snapshots.iter().map(|(id, why)| serde_json::json!({ "id": id, "why": why })).collect::<Vec<_>>(),
            "uploads": plan.uploads.iter().map(|(u, why)| serde_json::json!({ "key": u.key, "why": why })).collect::<Vec<_>>(),
            "databases": plan.databases.iter().map(|(name, why)| serde_json::json!({ "name": name, "why": why })).collect::<Vec<_>>(),
            "kept": plan.kept,
            "rds_snapshots": rds_plan.as_ref().filter(|_| rds).map(|plan| serde_json::json!({
                "deleted": plan.delete.iter().map(|(id, why)| serde_json::json!({ "id": id, "why": why })).collect::<Vec<_>>(),
                "kept": plan.kept,
            })),
            "retention": { "keep_last": config.snapshot.retention.keep_last, "keep_days": config.snapshot.retention.keep_days },
        }));
    }
    Ok(())
}

/// What `snapshot.retention` would delete of the RDS instance's snapguard
/// snapshots.
struct RdsPrune<'c> {
    client: Rds<'c>,
    /// The snapshots to delete, with why.
    delete: Vec<(String, String)>,
    /// How many are kept.
    kept: usize,
}

/// With `snapshot.provider: rds`, [`RdsPrune`]. `--rds` without that
/// provider is refused.
async fn rds_plan<'c>(
    config: &'c Config,
    asked: bool,
    protected: &[String],
) -> Result<Option<RdsPrune<'c>>, Error> {
    let Provider::Rds(rds) = &config.snapshot.provider else {
        if asked {
            return Err(Error::Usage(
                "`prune --rds` needs `snapshot.provider: rds`".into(),
            ));
        }
        return Ok(None);
    };
    let client = Rds::new(rds).await;
    let listed = match client.list().await {
        Ok(listed) => listed,
        Err(e) if asked => return Err(Error::nothing_changed("prune", e)),
        // Plain `prune` only counts RDS's snapshots: RDS out of reach must
        // not keep it from pruning the store.
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "cannot list the RDS snapshots; pruning the store only");
            return Ok(None);
        }
    };
    let (delete, kept) = prune::rds_plan(
        &listed,
        config.snapshot.retention,
        protected,
        chrono::Utc::now(),
    );
    Ok(Some(RdsPrune {
        client,
        delete,
        kept,
    }))
}

/// The RDS snapshots `--rds` deletes; without it, how many it would.
fn print_rds_plan(plan: Option<&RdsPrune<'_>>, asked: bool, dry_run: bool) {
    let Some(RdsPrune { delete, kept, .. }) = plan else {
        return;
    };
    if !asked {
        if !delete.is_empty() {
            crate::outln!(
                "{} RDS snapshot(s) are beyond snapshot.retention and kept (RDS keeps manual snapshots until deleted): `prune --rds` deletes them",
                delete.len()
            );
        }
        return;
    }
    for (id, why) in delete {
        crate::outln!(
            "{} RDS snapshot {id}: {why}",
            if dry_run { "would delete" } else { "delete" }
        );
    }
    crate::outln!("{kept} RDS snapshot(s) kept");
}

/// What the plan deletes, a line each, before it is done.
fn print_plan(plan: &prune::PrunePlan, config: &Config, dry_run: bool) {
    for (id, why) in &plan.snapshots {
        crate::outln!(
            "{} snapshot {id}: {why}",
            if dry_run { "would delete" } else { "delete" }
        );
    }
    for (upload, why) in &plan.uploads {
        crate::outln!(
            "{} incomplete upload {}: {why}",
            if dry_run { "would abort" } else { "abort" },
            upload.key
        );
    }
    for (name, why) in &plan.databases {
        crate::outln!(
            "{} database {name}: {why}",
            if dry_run { "would drop" } else { "drop" }
        );
    }
    crate::outln!(
        "{} snapshot(s) kept (snapshot.retention: keep_last {}, keep_days {})",
        plan.kept,
        config.snapshot.retention.keep_last,
        config.snapshot.retention.keep_days
    );
}
