//! `deploy`, `recover` and `plan`: the command-line side of the pipeline,
//! and where its report goes (stdout, `--report FILE`, GitHub Actions).

use std::path::Path;

use super::{open_store, print_json};
use crate::cancel::Cancel;
use crate::ci::GitHub;
use crate::cli::DeployArgs;
use crate::config::Config;
use crate::deploy::plan;
use crate::deploy::{DeployOptions, Deployer, RecoverOptions};
use crate::error::Error;
use crate::maintenance;
use crate::report::Report;

/// `snapguard deploy`.
pub async fn deploy(config: &Config, args: DeployArgs) -> Result<(), Error> {
    let store = open_store(config).await?;
    let deployer = Deployer::new(config, &store)?;
    let github = github();
    if let Some(gh) = &github {
        mask_secrets(gh, config);
    }
    let options = DeployOptions {
        lint_blocks: true,
        release: args.release,
        force: args.force,
        drill: false,
    };
    let (mut report, result) = deployer.deploy(&options, &Cancel::on_signals()).await;
    publish(
        config,
        &mut report,
        args.report.as_deref(),
        args.json,
        github.as_ref(),
    );
    crate::notify::send(&config.notify, "deploy", &report).await;
    result
}

/// `snapguard recover`.
pub async fn recover(
    config: &Config,
    options: &RecoverOptions,
    report_file: Option<&Path>,
    json: bool,
) -> Result<(), Error> {
    let store = open_store(config).await?;
    let deployer = Deployer::new(config, &store)?;
    if let Some(gh) = github() {
        mask_secrets(&gh, config);
    }
    // Installed for the whole run: a signal is logged and cuts short only
    // what can be started over (a store restore, an upload), never the
    // steps between.
    let cancel = Cancel::on_signals();
    match deployer.recover(options, &cancel).await? {
        None if json => {
            print_json(&serde_json::json!({ "outcome": "nothing_to_recover" }));
            Ok(())
        }
        None => {
            crate::outln!("nothing to recover: every deploy in the store is finished");
            Ok(())
        }
        Some((mut report, result)) => {
            publish(config, &mut report, report_file, json, github().as_ref());
            crate::notify::send(&config.notify, "recover", &report).await;
            result
        }
    }
}

fn github() -> Option<GitHub> {
    GitHub::from_env()
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
    // A health URL may carry a token in its query.
    if let Some(health) = &config.release.health {
        gh.mask(health.url.expose());
    }
    // A notification webhook's URL is its credential (Slack's are).
    for hook in &config.notify {
        gh.mask(hook.request.url.expose());
        for (_, value) in &hook.request.headers {
            gh.mask(value.expose());
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

fn publish(
    config: &Config,
    report: &mut Report,
    file: Option<&Path>,
    json: bool,
    github: Option<&GitHub>,
) {
    if let Some(note) = config.invocation.note()
        && !report.next_steps.is_empty()
    {
        report.next_steps.insert(0, format!("# {note}"));
    }
    let report = &*report;
    if json {
        crate::outln!("{}", report.to_json());
    } else {
        crate::out!("{}", report.render());
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
        lint_blocks: true,
        release,
        ..DeployOptions::default()
    };
    let found = deployer.plan(&options).await?;
    let database = config.database_url()?.dbname();
    if json {
        print_json(&plan::json(&found, config, &store, database));
    } else {
        crate::out!("{}", plan::text(&found, config, &store, database));
    }
    Ok(())
}
