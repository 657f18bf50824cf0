//! `snapguard rehearse`: resolves the source and target from the command
//! line, runs the rehearsal, and sends its report to stdout, `--report
//! FILE` and GitHub Actions.

use super::{open_store, restore_jobs};
use crate::cancel::Cancel;
use crate::ci::GitHub;
use crate::cli::RehearseArgs;
use crate::config::{Config, ConfigError, Provider};
use crate::db::ConnInfo;
use crate::error::Error;
use crate::rehearse::source::Source;
use crate::rehearse::{self, RehearseOptions};

/// Runs `snapguard rehearse`.
pub async fn run(config: &Config, args: RehearseArgs) -> Result<(), Error> {
    let url = |flag: &'static str, value: &str| {
        ConnInfo::parse(value).map_err(|e| Error::Usage(format!("`{flag}`: {e}")))
    };
    let from_url = args
        .from_url
        .as_deref()
        .map(|v| url("--from-url", v))
        .transpose()?;
    let target_url = args
        .target_url
        .as_deref()
        .map(|v| url("--target-url", v))
        .transpose()?;
    let source = match (args.snapshot, args.dump, from_url.clone()) {
        _ if args.pgbackrest => match &config.snapshot.provider {
            Provider::Pgbackrest(p) => Source::Pgbackrest(Box::new(p.clone())),
            _ => {
                return Err(Error::Usage(
                    "`rehearse --pgbackrest` restores a backup of `snapshot.pgbackrest.stanza`: it needs `snapshot.provider: pgbackrest`".into(),
                ));
            }
        },
        (_, Some(path), _) => Source::Dump(path),
        (_, _, Some(info)) => Source::Url(Box::new(info)),
        (which, None, None) => Source::Snapshot(which.unwrap_or_else(|| "latest".into())),
    };
    // The store is needed for a snapshot source; otherwise it is only
    // used when configured (nothing is written to it).
    let store = match (&source, config.store_location()) {
        (_, Ok(_)) => Some(open_store(config).await?),
        (Source::Snapshot(_), Err(e)) => return Err(no_store(e)),
        (_, Err(_)) => None,
    };
    let github = GitHub::from_env();
    if let Some(gh) = &github {
        for info in [&from_url, &target_url].into_iter().flatten() {
            if let Some(p) = info.password() {
                gh.mask(p.expose());
            }
        }
        super::deploy::mask_store_credentials(gh);
    }
    let options = RehearseOptions {
        source,
        target_url,
        keep: args.keep,
        drill: args.drill,
        jobs: restore_jobs(config, args.jobs),
    };
    let (report, result) =
        rehearse::rehearse(config, store.as_ref(), &options, &Cancel::on_signals()).await;
    if args.json {
        crate::outln!("{}", report.to_json());
    } else {
        crate::out!("{}", report.render());
    }
    if let Some(path) = &args.report
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        tracing::error!(path = %path.display(), error = %e, "cannot write the report file");
    }
    if let Some(gh) = &github {
        report.publish_to_github(gh);
    }
    result
}

fn no_store(e: ConfigError) -> Error {
    Error::Usage(format!(
        "{e}\n  rehearse needs a store to read a snapshot from; or rehearse on a file (`--dump FILE`) or a live database (`--from-url URL`)"
    ))
}
