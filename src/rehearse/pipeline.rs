//! The deploy's own pipeline pointed at the scratch copy: the same
//! preflight, steps, write guard, journal and rollback as production, with
//! a throwaway local store, no maintenance switches and no release hooks.

use std::path::Path;

use crate::cancel::Cancel;
use crate::config::{Config, LocalClone, Provider, ReleaseConfig};
use crate::deploy::journal::{Journal, Step};
use crate::deploy::observe::MigrateObserver;
use crate::deploy::{DeployOptions, Deployer};
use crate::error::{Error, chain};
use crate::report::Report;
use crate::store::Store;
use crate::store::fs::FsStore;

use super::target::Scratch;

/// The scratch copy as a deploy target.
pub struct Target<'a> {
    config: Config,
    store: Store,
    production: &'a Config,
}

/// One deploy on the copy: its report, and how it ended.
pub struct Run {
    /// The deploy's own report (steps, checks, snapshot, rollback).
    pub report: Report,
    /// What `deploy` would have returned.
    pub result: Result<(), Error>,
}

impl Run {
    /// Whether the deploy stopped where a drill stops it (every step
    /// passed), rather than at a failing step.
    pub fn drilled(&self) -> bool {
        self.report
            .failure
            .as_ref()
            .is_some_and(|f| f.step == Step::Drill.name())
    }

    /// The failure on one line, or `succeeded`.
    pub fn message(&self) -> String {
        match &self.result {
            Ok(()) => "succeeded".into(),
            Err(e) => chain(e),
        }
    }
}

impl<'a> Target<'a> {
    /// Production's configuration with the copy as its database, `store`
    /// (a local directory) as its store, and nothing outside the database:
    /// no maintenance switch, no release command, rollback or health
    /// check, no snapshot provider.
    pub fn new(production: &'a Config, scratch: &Scratch, store: &Path) -> Target<'a> {
        let mut config = production.clone();
        config.database.url = Some(scratch.info.clone());
        config.database.maintenance_db = scratch.admin.dbname().to_owned();
        if scratch.bin_dir.is_some() {
            config.database.pg_bin_dir = scratch.bin_dir.clone();
        }
        config.maintenance = Vec::new();
        config.release = ReleaseConfig::default();
        // The copy is snapshotted as `pg_dump` would: a provider's
        // snapshot and rollback act on production's server, instance or
        // cluster (a restore point in its repository, an RDS snapshot of
        // it, its instance renamed aside), never on the copy.
        if config.snapshot.provider != Provider::PgDump {
            tracing::info!(
                "the rehearsal snapshots the copy with pg_dump: `snapshot.provider` acts on production, which a rehearsal never touches"
            );
            config.snapshot.provider = Provider::PgDump;
            config.snapshot.store_copy = true;
        }
        Target {
            config,
            store: Store::Fs(FsStore::new(store.to_path_buf())),
            production,
        }
    }

    /// Runs the deploy on the copy. `drill` ends it with the deploy's
    /// rollback once every step has passed.
    pub async fn deploy(
        &self,
        local_clone: LocalClone,
        drill: bool,
        observer: Option<&mut dyn MigrateObserver>,
        cancel: &Cancel,
    ) -> Result<Run, Error> {
        let mut config = self.config.clone();
        config.snapshot.local_clone = local_clone;
        let deployer = Deployer::new(&config, &self.store)?;
        let options = DeployOptions {
            release: self.production.release.id.clone(),
            force: false,
            drill,
            lint_blocks: false,
        };
        let (report, result) = deployer.pipeline(&options, cancel, observer).await;
        Ok(Run { report, result })
    }

    /// The steps a deploy's journal went through, in order.
    pub async fn journal_steps(&self, deploy_id: &str) -> Vec<String> {
        match Journal::read(&self.store, deploy_id).await {
            Ok(j) => j
                .transitions
                .iter()
                .map(|t| t.step.name().to_owned())
                .collect(),
            Err(e) => vec![format!("(the journal cannot be read: {})", chain(&e))],
        }
    }
}
