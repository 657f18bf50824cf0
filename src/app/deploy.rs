//! `deploy`, `recover` and `plan`: the command-line side of the pipeline,
//! and where its report goes (stdout, `--report FILE`, GitHub Actions).

use std::path::Path;

use super::{open_store, print_json};
use crate::cancel::Cancel;
use crate::ci::GitHub;
use crate::cli::DeployArgs;
use crate::config::Config;
use crate::deploy::{DeployOptions, Deployer, RecoverOptions};
use crate::error::Error;
use crate::maintenance;
use crate::report::Report;
use crate::store::ObjectStore;

/// `snapguard deploy`.
pub async fn deploy(config: &Config, args: DeployArgs) -> Result<(), Error> {
    let store = open_store(config).await?;
    let deployer = Deployer::new(config, &store)?;
    let github = github();
    if let Some(gh) = &github {
        mask_secrets(gh, config);
    }
    let options = DeployOptions {
        release: args.release,
        force: args.force,
        drill: false,
    };
    let (report, result) = deployer.deploy(&options, &Cancel::on_signals()).await;
    publish(&report, args.report.as_deref(), args.json, github.as_ref());
    result
}

/// `snapguard recover`.
pub async fn recover(
    config: &Config,
    options: &RecoverOptions,
    report_file: Option<&Path>,
) -> Result<(), Error> {
    let store = open_store(config).await?;
    let deployer = Deployer::new(config, &store)?;
    if let Some(gh) = github() {
        mask_secrets(&gh, config);
    }
    match deployer.recover(options).await? {
        None => {
            println!("nothing to recover: every deploy in the store is finished");
            Ok(())
        }
        Some((report, result)) => {
            publish(&report, report_file, false, github().as_ref());
            result
        }
    }
}

fn github() -> Option<GitHub> {
    GitHub::detect(&|v| std::env::var(v).ok())
}

/// Asks the runner to hide the secrets snapguard knows of, before any of
/// them could appear in a hook's output.
fn mask_secrets(gh: &GitHub, config: &Config) {
    if let Ok(db) = config.database_url() {
        for form in db.secret_forms() {
            gh.mask(&form);
        }
    }
    mask_store_credentials(gh);
    for switch in &config.maintenance {
        if let maintenance::Switch::Http(h) = switch {
            for call in [&h.on, &h.off] {
                for (_, value) in &call.request.headers {
                    gh.mask(value.expose());
                }
            }
        }
    }
}

/// The AWS secret key and session token, when set in the environment.
pub(super) fn mask_store_credentials(gh: &GitHub) {
    for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(v) = std::env::var(var) {
            gh.mask(&v);
        }
    }
}

fn publish(report: &Report, file: Option<&Path>, json: bool, github: Option<&GitHub>) {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render());
    }
    if let Some(path) = file
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        tracing::error!(path = %path.display(), error = %e, "cannot write the report file");
    }
    if let Some(gh) = github {
        report.publish_to_github(gh);
    }
}

/// `snapguard plan`: the deploy's own preflight, stopping before
/// maintenance goes on; it refuses exactly when `deploy` would.
pub async fn plan(config: &Config, release: Option<String>, json: bool) -> Result<(), Error> {
    let store = open_store(config).await?;
    let deployer = Deployer::new(config, &store)?;
    let options = DeployOptions {
        release,
        ..DeployOptions::default()
    };
    let found = deployer.plan(&options).await?;
    let database = config.database_url()?.dbname().to_owned();
    let transaction = config.migrations.transaction.as_config();
    let local_clone = match &found.local_clone {
        Ok(()) => "yes".to_owned(),
        Err(why) => format!("no: {why}"),
    };
    if json {
        print_json(&serde_json::json!({
            "database": database,
            "server_version": found.server_version,
            "database_bytes": found.database_bytes,
            "store": store.uri(""),
            "nothing_to_deploy": found.nothing_to_deploy,
            "pending": found.pending.iter().map(|p| serde_json::json!({"version": p.version, "path": p.path, "transaction": p.transaction, "batched": p.batched})).collect::<Vec<_>>(),
            "external_migrator": found.external_command,
            "transaction": transaction,
            "checks": { "before": config.checks.before.len(), "after": config.checks.after.len(), "compare": config.checks.compare.len() },
            "maintenance": config.maintenance.iter().map(|s| s.describe()).collect::<Vec<_>>(),
            "local_clone": local_clone,
            "release": found.release,
            "release_command": config.release.command,
            "previous_release": found.previous_release,
        }));
        return Ok(());
    }
    println!(
        "deploy plan for `{database}` (PostgreSQL {}, {}): preflight passed",
        found.server_version,
        crate::progress::format_bytes(found.database_bytes)
    );
    if found.nothing_to_deploy {
        println!("  nothing to deploy: no pending migration and no release command");
        return Ok(());
    }
    println!("  1. maintenance on:");
    for s in &config.maintenance {
        println!("       {}", s.describe());
    }
    println!(
        "  2. snapshot to {}; local clone: {local_clone}",
        store.uri("snapshots/"),
    );
    match &found.external_command {
        Some(c) => println!("  3. migrate with the external migrator `{c}`"),
        None => {
            println!(
                "  3. migrate (transaction: {transaction}): {} pending",
                found.pending.len()
            );
            for p in &found.pending {
                println!(
                    "       {}{}{}",
                    p.path,
                    if p.transaction {
                        ""
                    } else {
                        "  [no transaction]"
                    },
                    if p.batched { "  [batched]" } else { "" }
                );
            }
        }
    }
    println!(
        "  4. verify: {} after, {} compare check(s) and the built-in ones",
        config.checks.after.len(),
        config.checks.compare.len()
    );
    let previous = found.previous_release.as_deref().unwrap_or("none recorded");
    match (&config.release.command, &found.release) {
        (Some(c), Some(r)) => println!("  5. release {r} with `{c}` (previous: {previous})"),
        (Some(c), None) => {
            println!("  5. release with `{c}`, no release id (previous: {previous})")
        }
        (None, _) => println!("  5. release: no command (previous: {previous})"),
    }
    if let Some(h) = &config.release.health {
        println!("  6. health: {}", crate::http::redact(h.url.expose()));
    }
    println!("  then maintenance off. `snapguard rehearse` measures how long this takes.");
    Ok(())
}
