//! `snapguard init`: scaffold the project in the current directory.

use crate::config::choice::Choice;
use std::path::Path;

use crate::cli::InitArgs;
use crate::error::Error;
use crate::init::{self, InitError, InitOptions};

/// Writes the scaffold; `config` is the global `--config` (where
/// `snapguard.yml` goes) and `store` the global `--store`.
pub fn run(config: Option<&Path>, store: Option<&str>, args: &InitArgs) -> Result<(), Error> {
    let root = std::env::current_dir().map_err(|e| {
        Error::nothing_changed(
            "init",
            InitError::Write {
                path: ".".into(),
                source: e,
            },
        )
    })?;
    let format = args
        .format
        .as_deref()
        .map(|value| {
            Option::<crate::migrate::source::Format>::from_word(value)?.ok_or_else(|| {
                "name the format to scaffold; `auto` only reads existing folders".to_owned()
            })
        })
        .transpose()
        .map_err(|e| Error::Usage(format!("invalid value for '--format <FORMAT>': {e}")))?;
    let options = InitOptions {
        root: root.clone(),
        config: config.unwrap_or(Path::new("snapguard.yml")).to_path_buf(),
        migrations_dir: args.migrations_dir.clone(),
        format,
        store_url: store.map(str::to_owned),
        workflow: !args.no_workflow,
        force: args.force,
    };
    let scaffold = init::plan(&options).map_err(|e| Error::nothing_changed("init", e))?;
    let written = init::write(&scaffold).map_err(|e| Error::failed("init", e))?;
    for path in &written {
        crate::outln!("created {}", init::relative(path, &root).display());
    }
    if scaffold.existing_migrations > 0 {
        crate::outln!(
            "kept the {} {} migrations in {}",
            scaffold.existing_migrations,
            scaffold.format,
            init::relative(&scaffold.migrations_dir, &root).display()
        );
    }
    crate::outln!("\nnext:");
    if options.store_url.is_none() {
        crate::outln!(
            "  - set store.url in snapguard.yml (or SNAPGUARD_STORE_URL): where snapshots are kept"
        );
    }
    crate::outln!("  - export DATABASE_URL=postgres://… and run `snapguard plan`");
    crate::outln!("  - `snapguard migrate new NAME` creates a migration");
    if options.workflow {
        crate::outln!(
            "  - in {}, replace OWNER/snapguard@v1 with where you take the action from; in the `production` environment set the secret DATABASE_URL and the variables AWS_REGION and SNAPGUARD_DEPLOY_ROLE_ARN",
            init::WORKFLOW_PATH
        );
        crate::outln!(
            "  - pull requests rehearse on {}: it holds no data yet (the migrations run on an empty database); put a dump of non-production data there",
            init::REHEARSAL_DUMP_PATH
        );
    }
    Ok(())
}
