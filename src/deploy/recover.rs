//! `snapguard recover`: finishes deploys that did not finish, from their
//! journals. A deploy that had reached MaintenanceOff is closed as a
//! success; any other is rolled back, resuming where a rollback stopped.

use chrono::Utc;
use tokio_postgres::Client;

use super::journal::{self, Journal, State, Step};
use super::rollback::Rollback;
use super::{Deployer, close};
use crate::db::{self, admin};
use crate::error::{Error, chain};
use crate::maintenance;
use crate::report::{Outcome, Report};

impl Deployer<'_> {
    /// Recovers every unfinished deploy, oldest first. `Ok(None)` when
    /// there is none.
    pub async fn recover(&self, force: bool) -> Result<Option<(Report, Result<(), Error>)>, Error> {
        let mut admin = self.lock("recover").await?;
        let ids = journal::unfinished(self.store)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        let Some(id) = ids.first() else {
            return Ok(None);
        };
        if ids.len() > 1 {
            tracing::warn!(
                count = ids.len(),
                "several unfinished deploys; recovering the oldest first, run `snapguard recover` again for the next"
            );
        }
        let mut journal = Journal::read(self.store, id)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        if journal.database != self.db.dbname() {
            return Err(Error::nothing_changed(
                "recover",
                format!(
                    "deploy {id} is of database `{}`, but `database.url` names `{}`",
                    journal.database,
                    self.db.dbname()
                ),
            ));
        }
        let mut report = Report::new(&journal.database);
        report.deploy_id = Some(journal.deploy_id.clone());
        report.release = journal.release.clone();
        report.previous_release = journal.previous_release.clone();
        report.started_at = journal.started_at;
        tracing::info!(deploy = %id, step = journal.step.name(), state = ?journal.state, "recovering");
        let result = self
            .recover_one(&mut admin, &mut journal, &mut report, force)
            .await;
        report.finished_at = Utc::now();
        Ok(Some((report, result)))
    }

    async fn recover_one(
        &self,
        admin: &mut Client,
        journal: &mut Journal,
        report: &mut Report,
        force: bool,
    ) -> Result<(), Error> {
        if journal.state == State::Succeeded {
            report.outcome = Outcome::Succeeded;
            close(self.store, journal, report).await;
            return Ok(());
        }
        if journal.state == State::Running && journal.step == Step::MaintenanceOff {
            // Everything up to the health check passed: finish the success.
            let cx = self.context(admin, journal);
            let failures =
                maintenance::all_off(&self.config.maintenance, &journal.maintenance, &cx).await;
            if !failures.is_empty() {
                let errors: Vec<String> = failures.iter().map(|e| chain(e)).collect();
                report.outcome = Outcome::RollbackIncomplete;
                return Err(Error::RollbackIncomplete(
                    format!(
                        "maintenance could not be switched off: {}",
                        errors.join("; ")
                    )
                    .into(),
                ));
            }
            self.finish_success(admin, journal, report).await;
            return Ok(());
        }
        let changed = self.database_changed(admin, journal).await?;
        journal.failure.get_or_insert_with(|| {
            format!(
                "the deploy's runner stopped during step `{}`",
                journal.step.name()
            )
        });
        let rollback = Rollback {
            deployer: self,
            admin,
            force,
            sightings: Vec::new(),
            // Another process opened the deploy's sessions; only the fence
            // and the sessions connected now can be checked.
            own_count_complete: false,
            changed,
        };
        match rollback.run(journal, report).await {
            Outcome::RolledBack => Ok(()),
            _ => Err(Error::RollbackIncomplete(report.rollback_errors().into())),
        }
    }

    /// Whether the database may differ from the snapshot. Migrations
    /// change it; with `transaction: all` only once their transaction
    /// committed, which the history's rows for this deploy tell.
    async fn database_changed(&self, admin: &Client, journal: &Journal) -> Result<bool, Error> {
        let reached = |step: Step| journal.transitions.iter().any(|t| t.step == step);
        if !reached(Step::Migrate) {
            return Ok(false);
        }
        if !journal.all_or_nothing || reached(Step::Verify) {
            return Ok(true);
        }
        // The dead runner's session may still be inside the transaction;
        // ending it rolls that back before the history is read.
        let database = self.db.dbname();
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'snapguard' AND pid <> pg_backend_pid()",
                &[&database],
            )
            .await
            .map_err(|e| Error::failed("recover", e))?;
        if !admin::exists(admin, database)
            .await
            .map_err(|e| Error::failed("recover", e))?
        {
            return Ok(true);
        }
        let app = db::connect(self.db)
            .await
            .map_err(|e| Error::failed("recover", e))?;
        let has_history: bool = app
            .query_one(
                "SELECT to_regclass('snapguard.schema_migrations') IS NOT NULL",
                &[],
            )
            .await
            .map_err(|e| Error::failed("recover", e))?
            .get(0);
        if !has_history {
            return Ok(false);
        }
        let recorded: i64 = app
            .query_one(
                "SELECT count(*) FROM snapguard.schema_migrations WHERE deploy_id = $1",
                &[&journal.deploy_id],
            )
            .await
            .map_err(|e| Error::failed("recover", e))?
            .get(0);
        Ok(recorded > 0)
    }
}
