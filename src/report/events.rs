//! The deploy's step events, and who hears them. Every step reports
//! through one [`Events`], named by its [`Step`] (the journal's and the
//! errors' vocabulary too): the report collects the rows, the log prints
//! them, and under GitHub Actions each step is a collapsible log group.

use std::cell::Cell;

use super::Report;
use super::step::Step;
use crate::ci::GitHub;

/// The one sink of a deploy's step events.
pub struct Events {
    github: Option<GitHub>,
    group_open: Cell<bool>,
}

impl Events {
    /// A sink for this process: GitHub Actions log groups when running
    /// under GitHub Actions.
    pub fn new(github: Option<GitHub>) -> Events {
        Events {
            github,
            group_open: Cell::new(false),
        }
    }

    /// A step starts: under GitHub Actions its log group opens (closing
    /// the previous one).
    pub fn started(&self, step: Step) {
        let step = step.name();
        tracing::debug!(step, "step started");
        if let Some(gh) = &self.github {
            if self.group_open.replace(true) {
                gh.end_group();
            }
            gh.group(&format!("snapguard: {step}"));
        }
    }

    /// A step ended: its row in the report, and a log line.
    pub fn finished(
        &self,
        report: &mut Report,
        step: Step,
        ok: bool,
        seconds: f64,
        detail: impl Into<String>,
    ) {
        let (step, detail) = (step.name(), detail.into());
        if ok {
            tracing::info!(step, seconds = format!("{seconds:.2}"), detail = %detail, "step done");
        } else {
            tracing::error!(step, seconds = format!("{seconds:.2}"), detail = %detail, "step failed");
        }
        report.step(step, ok, seconds, detail);
    }

    /// The deploy is over: the last log group closes.
    pub fn end(&self) {
        if let Some(gh) = &self.github
            && self.group_open.replace(false)
        {
            gh.end_group();
        }
    }
}
