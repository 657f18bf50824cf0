//! `snapguard prune`: what the retention and the unfinished deploys allow
//! to delete, printed, then deleted unless `--dry-run`.

use super::open_store;
use crate::config::Config;
use crate::db;
use crate::error::Error;
use crate::prune;

/// `snapguard prune`.
pub async fn prune(config: &Config, dry_run: bool, json: bool) -> Result<(), Error> {
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
    if !json {
        print_plan(&plan, config, dry_run);
    }
    if !dry_run {
        prune::execute(&store, &admin, &plan)
            .await
            .map_err(|e| Error::failed("prune", e))?;
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
            "retention": { "keep_last": config.snapshot.retention.keep_last, "keep_days": config.snapshot.retention.keep_days },
        }));
    }
    Ok(())
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
