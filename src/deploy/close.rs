//! Closing a deploy: maintenance off after a success, then the ledger, the
//! local clone, the journal, `report.json` and the database's record.

use std::time::Instant;

use chrono::Utc;
use tokio_postgres::Client;

use super::failure::MaintenanceStillOn;
use super::journal::{self, Journal, State, Step};
use super::offsite::Upload;
use super::preflight::Prepared;
use super::watch::Watch;
use super::{Deployer, marker};
use crate::db;
use crate::error::{Error, chain};
use crate::maintenance;
use crate::release::{self, Ledger};
use crate::report::{Outcome, Report};

impl Deployer<'_> {
    /// MaintenanceOff after a success, then the ledger, the clone and the
    /// report. A switch that will not turn off leaves the deploy needing a
    /// human (exit 5) even though the release is live.
    pub(super) async fn close_success(
        &self,
        p: &mut Prepared<'_>,
        report: &mut Report,
        upload: &mut Upload<'_>,
    ) -> Result<(), Error> {
        let started = Instant::now();
        if let Err(e) = self
            .begin(&mut p.watch, &mut p.journal, Step::MaintenanceOff)
            .await
        {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        let cx = self.context(&p.admin, &p.journal);
        let failures =
            maintenance::all_off(&self.config.maintenance, &p.journal.maintenance, &cx).await;
        report.downtime_seconds = report
            .downtime_seconds
            .map(|d| d + started.elapsed().as_secs_f64());
        if !failures.is_empty() {
            let errors: Vec<String> = failures.iter().map(|e| chain(e)).collect();
            self.events.finished(
                report,
                Step::MaintenanceOff,
                false,
                started.elapsed().as_secs_f64(),
                errors.join("; "),
            );
            report.next_steps = vec![
                "# the deploy succeeded, but maintenance is still on; turn it off:".into(),
                self.config.invocation.command("recover"),
            ];
            return Err(Error::RollbackIncomplete(Box::new(MaintenanceStillOn {
                deploy_succeeded: true,
                failures,
            })));
        }
        self.events.finished(
            report,
            Step::MaintenanceOff,
            true,
            started.elapsed().as_secs_f64(),
            "",
        );
        if upload.pending() {
            // `snapshot.offsite: after`: the window is over; the deploy is
            // not, until its store snapshot is committed.
            if let Err(e) = self
                .begin(&mut p.watch, &mut p.journal, Step::Offsite)
                .await
            {
                tracing::warn!(error = %chain(&e), "cannot write the journal");
            }
            if let Some(Err(e)) = self.settle_upload(p, report, upload).await {
                return Err(self
                    .offsite_incomplete(&mut p.watch, &mut p.journal, report, e)
                    .await);
            }
        }
        self.finish_success(&mut p.admin, &mut p.watch, &mut p.journal, report)
            .await;
        Ok(())
    }

    /// `snapshot.offsite: after` and the upload failed once maintenance was
    /// off: the release is live and cannot be rolled back over the writes
    /// it took since, so the deploy stays open with its clone (the only
    /// copy of the database before it) for `recover` to upload.
    async fn offsite_incomplete(
        &self,
        watch: &mut Watch,
        journal: &mut Journal,
        report: &mut Report,
        cause: crate::snapshot::take::SnapshotError,
    ) -> Error {
        let clone = journal
            .snapshot
            .as_ref()
            .and_then(|s| s.clone.clone())
            .unwrap_or_default();
        journal.failure = Some(format!("{}: {}", Step::Offsite.name(), chain(&cause)));
        if let Err(e) = watch.write(journal.save(self.store)).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        report.next_steps = vec![
            format!(
                "# the release is live and maintenance is off; the store snapshot of the database before this deploy failed. The clone `{clone}` holds that copy; once the store is reachable, upload it and close the deploy:"
            ),
            self.config.invocation.command("recover"),
        ];
        Error::OffsiteIncomplete(Box::new(crate::error::Described {
            what: format!(
                "the deploy succeeded and maintenance is off, but its store snapshot was not committed; the local clone `{clone}` is kept"
            ),
            source: cause.into(),
        }))
    }

    /// Records a successful deploy: ledger, clone dropped, journal and
    /// report closed. Shared with `recover`.
    pub(crate) async fn finish_success(
        &self,
        admin: &mut Client,
        watch: &mut Watch,
        journal: &mut Journal,
        report: &mut Report,
    ) {
        let store = self.store;
        if let Some(release) = &journal.release {
            let entry = release::LedgerEntry {
                release: release.clone(),
                deploy_id: journal.deploy_id.clone(),
                snapshot_id: journal.snapshot.as_ref().and_then(|s| s.id.clone()),
                finished_at: Utc::now(),
            };
            if let Err(e) = Ledger::append(store, entry).await {
                tracing::warn!(error = %chain(&e), "cannot record the release in the ledger; the next deploy will not know it as the previous release");
            }
        }
        // The store snapshot stays the way back; a full copy of the
        // database on the server's disk is not kept past a success.
        if let Some(clone) = journal.snapshot.as_ref().and_then(|s| s.clone.clone())
            && let Err(e) = db::admin::drop_database(admin, &clone).await
        {
            tracing::warn!(error = %chain(&e), clone, "cannot drop the local clone; `snapguard prune` removes it later");
        }
        journal.state = State::Succeeded;
        if let Err(e) = self.begin(watch, journal, Step::Done).await {
            tracing::warn!(error = %chain(&e), "cannot write the journal");
        }
        self.close(watch, journal, report, Outcome::Succeeded).await;
    }

    /// Closes the deploy: `report.json` beside the journal, and the
    /// database's own record ([`marker`]) with the report's outcome.
    pub(crate) async fn close(
        &self,
        watch: &mut Watch,
        journal: &Journal,
        report: &mut Report,
        outcome: Outcome,
    ) {
        report.outcome = outcome;
        // After a failed journal write the store gets a short deadline
        // ([`Watch::write`]): the database's record below is what keeps
        // another snapguard from redoing this deploy.
        let written = watch
            .write(journal::save_report(self.store, &journal.deploy_id, report))
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %chain(&e), "cannot write the report to the store; `snapguard recover` will see this deploy as unfinished");
            report.next_steps.push(
                "# the store could not take this deploy's report, so its journal there stays open; once the store is back, close it with:".into(),
            );
            report
                .next_steps
                .push(self.config.invocation.command("recover"));
        }
        let closed = match db::connect(self.db).await {
            Ok(app) => marker::finish(&app, &journal.deploy_id, report.outcome.as_str()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = closed {
            tracing::warn!(error = %chain(&e), deploy = %journal.deploy_id, "cannot close the deploy's record in snapguard.deploys; other snapguards will see it as unfinished until `snapguard recover` closes it");
        }
    }
}
