//! The rehearsal's observer of the deploy's migrate step: each run of the
//! migrator measured for its duration, rows, WAL, rewrites ([`measure`])
//! and lock holds ([`locks`]).

use crate::db::ConnInfo;
use crate::deploy::observe::{MigrateObserver, MigratorRun, Observed};

use super::locks;
use super::measure::{self, Mark, Probe};
use super::report::MigrationMeasure;

/// Measures each run of the migrator on the scratch copy.
pub struct Meter {
    info: ConnInfo,
    one_at_a_time: bool,
    /// The lock sampler and the probe, open during the migrate step only.
    sessions: Option<(locks::Sampler, Probe)>,
    mark: Option<Mark>,
    /// Each run that applied something, and the failed one.
    pub measures: Vec<MigrationMeasure>,
    /// Migrations applied, which a group (`transaction: all`) makes more
    /// than the measures; an external migrator counts as one.
    pub applied: usize,
}

impl Meter {
    /// A meter for the copy at `info`; `one_at_a_time` as the rehearsal
    /// wants it (the migrate step decides whether it can).
    pub fn new(info: &ConnInfo, one_at_a_time: bool) -> Meter {
        Meter {
            info: info.clone(),
            one_at_a_time,
            sessions: None,
            mark: None,
            measures: Vec::new(),
            applied: 0,
        }
    }

    async fn open(&mut self) -> Result<(), crate::db::DbError> {
        if self.sessions.is_none() {
            let sampler = locks::Sampler::start(&self.info).await?;
            let probe = measure::Probe::connect(&self.info).await?;
            self.sessions = Some((sampler, probe));
        }
        let (_, probe) = self.sessions.as_ref().expect("opened above");
        self.mark = Some(probe.mark().await?);
        Ok(())
    }

    async fn record(&mut self, run: MigratorRun<'_>) -> Result<(), crate::db::DbError> {
        let (sampler, probe) = self.sessions.as_ref().expect("opened by before()");
        let mark = self.mark.take().expect("marked by before()");
        let change = probe.since(&mark).await?;
        let mut m = MigrationMeasure {
            version: String::new(),
            path: String::new(),
            seconds: (run.to - run.from).as_secs_f64(),
            rows: 0,
            wal_bytes: change.wal_bytes,
            rewrote: change.rewritten,
            locks: sampler.holds(run.from, run.to).await,
        };
        match run.result {
            Ok(outcome) => {
                match (&outcome.external_command, outcome.applied.as_slice()) {
                    (None, []) => return Ok(()),
                    (None, [one]) => {
                        m.version = one.version.clone();
                        m.path = one.path.clone();
                        m.seconds = one.seconds;
                        m.rows = one.rows;
                    }
                    (None, many) => {
                        m.version = "all".into();
                        m.path = format!("{} migrations in one transaction", many.len());
                        m.rows = many.iter().map(|a| a.rows).sum();
                    }
                    (Some(command), _) => {
                        m.version = "external".into();
                        m.path = format!("external migrator `{command}`");
                    }
                }
                self.applied += if outcome.external_command.is_some() {
                    1
                } else {
                    outcome.applied.len()
                };
                tracing::info!(migration = %m.path, seconds = format!("{:.2}", m.seconds), "rehearsed");
            }
            Err(e) => {
                m.version = "failed".into();
                m.path = e
                    .failed_at()
                    .map(|(file, _)| file)
                    .unwrap_or_else(|| "(failed)".into());
            }
        }
        self.measures.push(m);
        Ok(())
    }
}

impl MigrateObserver for Meter {
    fn one_at_a_time(&self) -> bool {
        self.one_at_a_time
    }

    fn before(&mut self) -> Observed<'_> {
        Box::pin(async move { self.open().await.map_err(Into::into) })
    }

    fn after<'a>(&'a mut self, run: MigratorRun<'a>) -> Observed<'a> {
        Box::pin(async move { self.record(run).await.map_err(Into::into) })
    }

    fn done(&mut self) {
        self.sessions = None;
    }
}
