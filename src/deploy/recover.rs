//! `snapguard recover`: finishes deploys that did not finish, from their
//! journals. A deploy that had passed its steps (it had reached
//! MaintenanceOff, or was waiting for its store snapshot) is closed as a
//! success, its snapshot taken from the clone again if the upload was cut
//! short; any other is rolled back, resuming where a rollback stopped.
//!
//! Before anything is rolled back, the dead runner's children are ended
//! (a release hook that outlived its runner would otherwise finish over
//! the rollback), and the database is asked whether it still is the one
//! the deploy left: a later deploy's migrations, or a record saying the
//! deploy was closed by someone else, stop the rollback, since it would
//! silently undo history it did not create.
//!
//! The ways out when the rollback cannot restore: `--force` (restore
//! although writes after the snapshot are possible), `--snapshot ID`
//! (restore another store snapshot, when the deploy's own is damaged), and
//! `--accept-current` (keep the database as it is, switch maintenance off
//! and close the deploy).

use std::time::Duration;

use chrono::Utc;
use tokio_postgres::Client;

use super::failure::{
    IncompleteRollback, MaintenanceStillOn, NoCopyBefore, NotOurHistory, PitrInterrupted,
    RecoveredByRollback, RolledBackByRunner,
};
use super::journal::{self, Journal, State, Step};
use super::offsite::BeforeCopy;
use super::rollback::{self, Rollback};
use super::watch::{OwnFrom, Watch};
use super::{Deployer, marker, recording_children};
use crate::cancel::Cancel;
use crate::config::Provider;
use crate::config::invocation::Invocation;
use crate::db::{self, admin};
use crate::error::{Error, chain};
use crate::maintenance;
use crate::process::group;
use crate::report::{Outcome, Report};
use crate::snapshot::guard;
use crate::snapshot::pgbackrest::{self, Pgbackrest};
use crate::store::ObjectStore;

/// How long a dead runner's child gets after SIGTERM before SIGKILL.
const CHILD_GRACE: Duration = Duration::from_secs(10);

/// What the command line asks of `recover`.
#[derive(Debug, Clone, Default)]
pub struct RecoverOptions {
    /// Restore although the write guard objects.
    pub force: bool,
    /// Restore this store snapshot instead of the deploy's own.
    pub snapshot: Option<String>,
    /// Keep the database as it is now and close the deploy.
    pub accept_current: bool,
}

impl Deployer<'_> {
    /// Recovers the oldest unfinished deploy. `Ok(None)` when there is none.
    pub async fn recover(
        &self,
        options: &RecoverOptions,
        cancel: &Cancel,
    ) -> Result<Option<(Report, Result<(), Error>)>, Error> {
        if let Provider::Pgbackrest(_) = &self.config.snapshot.provider {
            wait_out_recovery(self.db).await;
        }
        let mut admin = match self.lock("recover").await {
            Ok(admin) => admin,
            Err(e) if self.server_down(&e) && self.resume_rds_swap().await? => {
                self.lock("recover").await?
            }
            Err(e) => return Err(self.interrupted_restore(e).await),
        };
        // Before this process opens any session to the database: the
        // sessions that began before it are the dead runner's.
        let began = admin::server_time(&admin)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        let ids = journal::unfinished(self.store)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        let Some(id) = ids.first() else {
            self.close_stale_markers(options).await?;
            return Ok(None);
        };
        if ids.len() > 1 {
            tracing::warn!(
                count = ids.len(),
                next = %self.config.invocation.command("recover"),
                "several unfinished deploys; recovering the oldest first, run it again for the next"
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
        self.end_children(&journal).await?;
        self.abort_uploads(&journal).await;
        let result = recording_children(
            self.store,
            id,
            self.recover_one(
                &mut admin,
                &mut journal,
                &mut report,
                options,
                &began,
                cancel,
            ),
        )
        .await;
        report.outcome = Outcome::of(&result, report.outcome);
        report.finished_at = Utc::now();
        Ok(Some((report, result)))
    }

    /// The database server is not there (`cause`): when the oldest
    /// unfinished deploy was in the middle of a point-in-time restore, which
    /// stops the server, that is likely why; the error then says how to
    /// finish the restore by hand. Otherwise `cause` as it is.
    async fn interrupted_restore(&self, cause: Error) -> Error {
        let Provider::Pgbackrest(config) = &self.config.snapshot.provider else {
            return cause;
        };
        // Only a server that is not there: a lock held by another process
        // (a `recover` restoring right now) or a refused login is not a
        // restore to finish by hand.
        if !self.server_down(&cause) {
            return cause;
        }
        let Ok(ids) = journal::unfinished(self.store).await else {
            return cause;
        };
        let Some(id) = ids.first() else {
            return cause;
        };
        let Ok(journal) = Journal::read(self.store, id).await else {
            return cause;
        };
        let point = journal
            .snapshot
            .as_ref()
            .and_then(|s| s.restore_point.clone());
        let restoring = journal.step == Step::RestoreDatabase
            && !journal.database_restored
            && journal.guard_refusal.is_empty();
        let (Some(point), true) = (point, restoring) else {
            return cause;
        };
        let [stop, restore, start] = Pgbackrest::new(config).restore_by_hand(&point);
        Error::RollbackIncomplete(Box::new(PitrInterrupted {
            deploy_id: journal.deploy_id.clone(),
            point: point.name,
            stop,
            restore,
            start,
            accept_current: self.config.invocation.command("recover --accept-current"),
            released: journal.released && !journal.release_rolled_back,
            source: cause,
        }))
    }

    /// Whether `cause`, the deploy lock not taken, is the server not there
    /// (no connection at all, or starting up or shutting down).
    fn server_down(&self, cause: &Error) -> bool {
        match cause {
            Error::NothingChanged { source, .. } => source
                .downcast_ref::<db::DbError>()
                .is_some_and(db::DbError::server_down),
            _ => false,
        }
    }

    /// `snapshot.provider: rds` or `aurora-clone`: when the oldest
    /// unfinished deploy's rollback had begun its swap (the write guard
    /// passed), the database is not there to lock while the instance or
    /// cluster is renamed aside:
    /// the swap is finished first, without the lock, from what RDS shows
    /// and the journal says. `Ok(true)` when it was.
    async fn resume_rds_swap(&self) -> Result<bool, Error> {
        if !matches!(self.config.snapshot.provider, Provider::Rds(_)) {
            return Ok(false);
        }
        let fail = Error::RollbackIncomplete;
        let ids = journal::unfinished(self.store)
            .await
            .map_err(|e| fail(e.into()))?;
        let Some(id) = ids.first() else {
            return Ok(false);
        };
        let mut journal = Journal::read(self.store, id)
            .await
            .map_err(|e| fail(e.into()))?;
        let swapping = journal.snapshot.as_ref().is_some_and(|s| s.swap_begun());
        if !swapping || journal.database_restored {
            return Ok(false);
        }
        tracing::info!(deploy = %journal.deploy_id, "the database does not answer and this deploy's rollback was swapping the RDS instance or Aurora cluster: finishing the swap");
        let done = rollback::swap(self, &mut journal).await.map_err(fail)?;
        tracing::info!("{done}");
        journal.database_restored = true;
        journal.save(self.store).await.map_err(|e| fail(e.into()))?;
        Ok(true)
    }

    /// Ends the process groups the dead runner recorded, so nothing it
    /// started can finish after the rollback.
    async fn end_children(&self, journal: &Journal) -> Result<(), Error> {
        // A runner killed while it rewrote the record can leave it torn on
        // a store whose writes are not atomic: that must not block
        // `recover` for ever, so it is said loudly and passed.
        let children = match journal::read_children(self.store, &journal.deploy_id).await {
            Ok(children) => children,
            Err(e) => {
                tracing::error!(error = %chain(&e), "cannot read which commands the deploy's runner had started; if one of them (a release hook, pg_dump) still runs, end it by hand");
                Vec::new()
            }
        };
        let here = group::this_host();
        for child in children {
            if child.host != here {
                tracing::warn!(pgid = child.pgid, command = %child.command, host = %child.host, "the deploy's runner started this command on another machine; make sure it is not still running there");
                continue;
            }
            if group::exists(child.pgid) {
                tracing::warn!(pgid = child.pgid, command = %child.command, "the deploy's runner left this command running; ending it before the rollback");
                group::end(child.pgid, CHILD_GRACE).await;
            }
        }
        Ok(())
    }

    /// Aborts the snapshot uploads the dead runner left incomplete: those
    /// under `snapshots/` started since the deploy began. (A `snapguard
    /// snapshot` of the same prefix running right now would fail loudly,
    /// with no manifest; nothing half-made is ever offered for restore.)
    async fn abort_uploads(&self, journal: &Journal) {
        let uploads = match self.store.incomplete_uploads("snapshots/").await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "cannot list incomplete uploads; a bucket lifecycle rule that aborts incomplete multipart uploads removes them");
                return;
            }
        };
        let since = journal.started_at - chrono::Duration::seconds(5);
        for u in uploads
            .iter()
            .filter(|u| crate::snapshot::upload_started(u).is_some_and(|t| t >= since))
        {
            match self.store.abort_incomplete(u).await {
                Ok(()) => {
                    tracing::info!(key = %u.key, "aborted the deploy's incomplete snapshot upload")
                }
                Err(e) => {
                    tracing::warn!(key = %u.key, error = %chain(&e), "cannot abort an incomplete upload")
                }
            }
        }
    }

    /// With every journal closed, closes the database's records of deploys
    /// whose journal in this store is closed (a close that could not reach
    /// the database), and points at the store of any other.
    ///
    /// A lost record (`snapguard.deploys` dropped) is refused as deploys
    /// refuse it, until `--accept-current` says no deploy is unfinished and
    /// recreates it.
    async fn close_stale_markers(&self, options: &RecoverOptions) -> Result<(), Error> {
        let app = db::connect(self.db)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        if let Some(last) = marker::lost(&app)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?
        {
            if !options.accept_current {
                return Err(Error::nothing_changed(
                    "recover",
                    marker::RecordLost {
                        database: self.db.dbname().to_owned(),
                        last,
                    },
                ));
            }
            tracing::warn!(database = %self.db.dbname(), "--accept-current: recreating `snapguard.deploys`, which was missing, as no deploy is unfinished");
            marker::recreate(&app)
                .await
                .map_err(|e| Error::failed("recover", e))?;
        }
        let open = marker::open_deploys(&app)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        let ours = self.store.uri("");
        for deploy in open {
            if deploy.store != ours {
                return Err(Error::nothing_changed(
                    "recover",
                    marker::Unfinished {
                        database: self.db.dbname().to_owned(),
                        open: deploy,
                    },
                ));
            }
            let outcome = match self
                .store
                .get(&journal::report_key(&deploy.deploy_id))
                .await
            {
                Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["outcome"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "closed".into()),
                Err(_) => "journal missing from the store".into(),
            };
            tracing::info!(deploy = %deploy.deploy_id, outcome, "closing the database's record of a finished deploy");
            marker::finish(&app, &deploy.deploy_id, &outcome)
                .await
                .map_err(|e| Error::failed("recover", e))?;
        }
        Ok(())
    }

    async fn recover_one(
        &self,
        admin: &mut Client,
        journal: &mut Journal,
        report: &mut Report,
        options: &RecoverOptions,
        began: &guard::ServerTime,
        cancel: &Cancel,
    ) -> Result<(), Error> {
        // Counting this process's own sessions starts once it took over the
        // dead runner's (below).
        let mut watch = Watch::default();
        if journal.state == State::Succeeded {
            self.close(&mut watch, journal, report, Outcome::Succeeded)
                .await;
            return Ok(());
        }
        if let Some(closed) = self
            .rolled_back_by_its_runner(&mut watch, journal, report)
            .await?
        {
            return Err(closed);
        }
        if journal.state == State::Running
            && matches!(journal.step, Step::MaintenanceOff | Step::Offsite)
        {
            // Every step passed: finish the success, unless the database
            // says the deploy was closed since (its runner rolled it back
            // while the store, and so this journal, was out of reach):
            // finishing would record a release that is not live.
            if let Err(refused) = self.check_history_is_ours(journal, true).await {
                if options.accept_current {
                    return self
                        .accept_current(admin, &mut watch, journal, report)
                        .await;
                }
                report.next_steps = accept_current_steps(&self.config.invocation);
                return Err(refused);
            }
            // The store snapshot streamed from the clone comes first when
            // the window waited for it (`before-maintenance-off`); with
            // `after`, maintenance was off before the upload was waited for.
            let off_first = journal
                .transitions
                .iter()
                .any(|t| t.step == Step::MaintenanceOff);
            if !off_first {
                let before = self.recover_upload(journal, true, cancel).await?;
                self.no_copy_is_no_success(journal, report, &before, options, false)?;
            }
            // Not again when the runner had switched it off and only the
            // upload was left (`after`).
            if journal.step == Step::MaintenanceOff || !off_first {
                self.maintenance_off(admin, journal).await?;
            }
            if off_first {
                let before = self.recover_upload(journal, true, cancel).await?;
                self.no_copy_is_no_success(journal, report, &before, options, true)?;
            }
            self.finish_success(admin, &mut watch, journal, report)
                .await;
            return Ok(());
        }
        if options.accept_current {
            return self
                .accept_current(admin, &mut watch, journal, report)
                .await;
        }
        if let Err(refused) = self.check_history_is_ours(journal, false).await {
            report.next_steps = accept_current_steps(&self.config.invocation);
            return Err(refused);
        }
        // The dead runner's sessions may still run on the server (a
        // backend notices a vanished client only when it next talks to
        // it), in the middle of a migration. Ending them stops that and,
        // inside a transaction, rolls it back; the guard counts them as
        // the runner's.
        let ended = self.end_runner_sessions(admin, began).await?;
        // A session the last journal write saw open is in `own_sessions`
        // already; one it did not see is the runner's too (it began before
        // this process took the lock), and counts on top.
        let recorded = match &journal.own_open {
            Some(open) => {
                journal.own_sessions + ended.iter().filter(|s| !open.contains(s)).count() as u64
            }
            // Which sessions were open is unknown: the ended ones may all
            // be in `own_sessions` already.
            None => journal.own_sessions,
        };
        tracing::debug!(
            recorded_by_journal = journal.own_sessions,
            open_at_last_write = ?journal.own_open,
            ended = ?ended,
            "the dead runner's sessions"
        );
        // Every session this process opened to the database came after the
        // baseline (another process took it), so all of them count.
        watch.own_from = Some(OwnFrom {
            carried: recorded,
            base: 0,
        });
        let changed = self.database_changed(admin, journal).await?;
        // The clone's upload: a committed one is the store snapshot the
        // rollback can fall back on; a half-done one is discarded.
        if let Err(e) = self.recover_upload(journal, false, cancel).await {
            tracing::warn!(error = %chain(&e), "cannot tell whether the deploy's store snapshot committed; the rollback relies on the clone");
        }
        journal.failure.get_or_insert_with(|| {
            format!(
                "the deploy's runner stopped during step `{}`",
                journal.step.name()
            )
        });
        let rollback = Rollback {
            deployer: self,
            admin,
            watch: &mut watch,
            force: options.force,
            own: if self.config.migrations.command.is_some() {
                guard::OwnSessions::Unknown
            } else {
                guard::OwnSessions::Recorded {
                    recorded,
                    registered_since: journal
                        .snapshot
                        .as_ref()
                        .and_then(|s| s.guard.registered_before),
                }
            },
            changed,
            snapshot_override: options.snapshot.clone(),
            cancel: cancel.clone(),
        };
        match rollback.run(journal, report).await {
            Ok(()) => Err(Error::RolledBack(Box::new(RecoveredByRollback {
                deploy_id: journal.deploy_id.clone(),
                failure: journal.failure.clone().unwrap_or_default(),
            }))),
            Err(errors) => Err(Error::RollbackIncomplete(Box::new(IncompleteRollback {
                errors,
                cause: None,
            }))),
        }
    }

    /// Switches maintenance off from the journal's record, reporting a
    /// switch that will not go off as a rollback that needs a human.
    async fn maintenance_off(&self, admin: &Client, journal: &Journal) -> Result<(), Error> {
        let cx = self.context(admin, journal);
        let failures =
            maintenance::all_off(&self.config.maintenance, &journal.maintenance, &cx).await;
        if failures.is_empty() {
            return Ok(());
        }
        Err(Error::RollbackIncomplete(Box::new(MaintenanceStillOn {
            deploy_succeeded: false,
            failures,
        })))
    }

    /// A deploy that passed its steps but whose copy of the database before
    /// it is lost (no committed upload, no clone) is live with nothing to
    /// roll it back to: not a success to report. It stays open, with
    /// maintenance as it is, until `--accept-current` closes it as it
    /// stands.
    fn no_copy_is_no_success(
        &self,
        journal: &Journal,
        report: &mut Report,
        before: &BeforeCopy,
        options: &RecoverOptions,
        maintenance_off: bool,
    ) -> Result<(), Error> {
        let BeforeCopy::Lost(why) = before else {
            return Ok(());
        };
        if options.accept_current {
            tracing::warn!(deploy = %journal.deploy_id, "--accept-current: closing the deploy as succeeded, with no copy of the database before it ({why})");
            return Ok(());
        }
        let invocation = &self.config.invocation;
        report.next_steps = vec![
            "# nothing can roll this deploy back; take a snapshot of the database as it is now, then close the deploy as it stands:".into(),
            invocation.command("snapshot"),
            invocation.command("recover --accept-current"),
        ];
        Err(Error::RollbackIncomplete(Box::new(NoCopyBefore {
            deploy_id: journal.deploy_id.clone(),
            why,
            maintenance_off,
        })))
    }

    /// `--accept-current`: keep the database as it is, switch maintenance
    /// off, close the deploy, and say what the database now holds.
    async fn accept_current(
        &self,
        admin: &mut Client,
        watch: &mut Watch,
        journal: &mut Journal,
        report: &mut Report,
    ) -> Result<(), Error> {
        let applied = match db::connect(self.db).await {
            Ok(app) => crate::migrate::history::applied_by(&app, &journal.deploy_id).await,
            Err(e) => Err(e),
        }
        .map_err(|e| Error::failed("recover", e))?;
        let mut state = if applied.is_empty() {
            "no migration of this deploy is recorded in the database's history".to_owned()
        } else {
            format!(
                "the database keeps this deploy's migration(s) {}",
                applied.join(", ")
            )
        };
        if let Some(partly) = super::rollback::partly_applied(self, journal).await {
            state.push_str(&format!(
                " (half-applied: {partly}; the application runs on a schema between two releases)"
            ));
        }
        let release = match (journal.released, journal.release_rolled_back) {
            (false, _) => "the release command never ran".to_owned(),
            (true, true) => format!(
                "the previous release {} was put back",
                journal
                    .previous_release
                    .as_deref()
                    .unwrap_or("(unrecorded)")
            ),
            (true, false) => format!(
                "release {} was started and not rolled back: check which version is live",
                journal.release.as_deref().unwrap_or("(unnamed)")
            ),
        };
        tracing::warn!(deploy = %journal.deploy_id, "--accept-current: keeping the database as it is; {state}; {release}");
        self.maintenance_off(admin, journal).await?;
        journal.state = State::RolledBack;
        journal
            .failure
            .get_or_insert_with(|| "accepted as is".into());
        if let Err(e) = self.begin(watch, journal, Step::RolledBack).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        self.events.finished(
            report,
            Step::AcceptCurrent,
            true,
            0.0,
            format!("nothing restored: {state}; {release}; maintenance off"),
        );
        self.close(watch, journal, report, Outcome::AcceptedCurrent)
            .await;
        crate::outln!(
            "deploy {} closed as is: {state}; {release}; maintenance is off",
            journal.deploy_id
        );
        Ok(())
    }

    /// The runner rolled the deploy back completely but could not close its
    /// journal (the store was out of reach); the database's record, which
    /// only this deploy's own runner or `recover` writes under its id, says
    /// so. The journal is closed from it: exit 4, as the deploy itself
    /// exited. Any other recorded outcome is left to
    /// [`Self::check_history_is_ours`].
    async fn rolled_back_by_its_runner(
        &self,
        watch: &mut Watch,
        journal: &mut Journal,
        report: &mut Report,
    ) -> Result<Option<Error>, Error> {
        let Ok(app) = db::connect(self.db).await else {
            return Ok(None);
        };
        let recorded = marker::outcome_of(&app, &journal.deploy_id)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        if recorded != Some(Some(Outcome::RolledBack.as_str().to_owned())) {
            return Ok(None);
        }
        tracing::info!(deploy = %journal.deploy_id, "the database records this deploy as rolled back by its runner; closing its journal, which the store could not take then");
        journal.state = State::RolledBack;
        journal.database_restored = true;
        journal.failure.get_or_insert_with(|| "rolled back".into());
        if let Err(e) = self.begin(watch, journal, Step::RolledBack).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        self.close(watch, journal, report, Outcome::RolledBack)
            .await;
        Ok(Some(Error::RolledBack(Box::new(RolledBackByRunner {
            deploy_id: journal.deploy_id.clone(),
        }))))
    }

    /// Refuses to roll back (or finish) over history this deploy did not
    /// create: the database's record of it closed by someone else, or
    /// migrations applied after it started by another deploy or a plain
    /// `migrate`. `finishing`: the deploy had passed its steps and would be
    /// closed as a success.
    async fn check_history_is_ours(&self, journal: &Journal, finishing: bool) -> Result<(), Error> {
        let app = match db::connect(self.db).await {
            Ok(app) => app,
            // No database to compare: the rollback decides from the journal.
            Err(_) => return Ok(()),
        };
        let refuse = |why: String| {
            Error::RollbackIncomplete(Box::new(NotOurHistory {
                deploy_id: journal.deploy_id.clone(),
                finishing,
                why,
                accept_current: self.config.invocation.command("recover --accept-current"),
            }))
        };
        if let Some(Some(outcome)) = marker::outcome_of(&app, &journal.deploy_id)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?
        {
            return Err(refuse(format!(
                "the database records this deploy as closed (`{outcome}`) since the journal was written"
            )));
        }
        let later = marker::later_history(&app, &journal.deploy_id, journal.started_at)
            .await
            .map_err(|e| Error::nothing_changed("recover", e))?;
        if !later.is_empty() {
            return Err(refuse(format!(
                "the database has history this deploy did not create: {}",
                later.join("; ")
            )));
        }
        Ok(())
    }

    /// Ends the sessions snapguard's dead runner left on the database
    /// (this process holds the lock, so no other deploy or migrate owns
    /// them); returns which.
    async fn end_runner_sessions(
        &self,
        admin: &Client,
        began: &guard::ServerTime,
    ) -> Result<Vec<guard::SessionId>, Error> {
        let ended = guard::end_dead_runner_sessions(admin, self.db.dbname(), began)
            .await
            .map_err(|e| Error::failed("recover", e))?;
        if !ended.is_empty() {
            tracing::warn!(
                count = ended.len(),
                "ended sessions the deploy's runner left running"
            );
        }
        Ok(ended)
    }

    /// Whether the database may differ from the snapshot. Migrations
    /// change it; with `transaction: all` only once their transaction
    /// committed, which the history's rows for this deploy tell. The
    /// rollback also compares the catalogue fingerprint before it trusts
    /// a "no".
    async fn database_changed(&self, admin: &Client, journal: &Journal) -> Result<bool, Error> {
        let reached = |step: Step| journal.transitions.iter().any(|t| t.step == step);
        if !reached(Step::Migrate) {
            return Ok(false);
        }
        if !journal.all_or_nothing || reached(Step::Verify) {
            return Ok(true);
        }
        let database = self.db.dbname();
        if !admin::exists(admin, database)
            .await
            .map_err(|e| Error::failed("recover", e))?
        {
            return Ok(true);
        }
        let app = db::connect(self.db)
            .await
            .map_err(|e| Error::failed("recover", e))?;
        Ok(
            !crate::migrate::history::applied_by(&app, &journal.deploy_id)
                .await
                .map_err(|e| Error::failed("recover", e))?
                .is_empty(),
        )
    }
}

/// A server replaying WAL after a point-in-time restore (started by hand,
/// or by a runner that died before it was promoted) takes no writes:
/// `recover` waits for the promotion. A server that does not answer, or is
/// a standby for good, is left to the lock to report.
async fn wait_out_recovery(app: &crate::db::ConnInfo) {
    let Ok(client) = db::connect(app).await else {
        return;
    };
    let in_recovery = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .is_ok_and(|row| row.get::<_, bool>(0));
    drop(client);
    if in_recovery {
        tracing::info!(
            "the server is replaying WAL (a point-in-time restore); waiting until it is promoted"
        );
        if let Err(e) = crate::snapshot::wait_until_primary(app, pgbackrest::BACK_WITHIN).await {
            tracing::warn!(error = %chain(&e), "the server is still in recovery");
        }
    }
}

/// The way out when `recover` will not touch a deploy the database says
/// was closed, or followed by history it did not create.
fn accept_current_steps(invocation: &Invocation) -> Vec<String> {
    vec![
        "# keep the database as it is now and close this deploy:".into(),
        invocation.command("recover --accept-current"),
    ]
}
