//! Maintenance mode: the switches that take the application offline for a
//! deploy, turned on in order and off in reverse.
//!
//! Each switch is worked in two steps so a killed process can always undo
//! it: [`Switch::prepare`] records what `off` must put back (a flag file
//! that already existed, the fenced roles' attributes) without changing
//! anything; the caller writes that [`Engaged`] record to the journal; then
//! [`Switch::on`] changes things. [`Switch::off`] needs only the record.

pub mod fence;
pub mod manual;

use std::time::Duration;

use tokio_postgres::Client;

pub use crate::config::maintenance::{
    CommandSwitch, FenceSwitch, FileSwitch, HttpCall, HttpSwitch, Switch,
};
use crate::error::BoxError;
use crate::http::{self, HttpClient};
use crate::shell::Shell;

/// What a switch recorded before it went on: everything `off` needs, kept
/// in the deploy journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Engaged {
    /// The switch's position in `maintenance`.
    pub index: usize,
    /// `command`, `http`, `file` or `postgres_fence`.
    pub kind: String,
    /// For a flag file: it existed before, so `off` leaves it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flag_existed: bool,
    /// For a fence: the roles' attributes before it went up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<fence::RoleState>,
}

/// A switch failed to turn on or off.
#[derive(Debug, thiserror::Error)]
#[error("maintenance switch {} ({what}) failed to turn {direction}", index + 1)]
pub struct MaintenanceError {
    /// Its position in `maintenance`, from 0.
    pub index: usize,
    /// What it is, without secrets.
    pub what: String,
    /// `on` or `off`.
    pub direction: &'static str,
    /// Why.
    #[source]
    pub source: BoxError,
}

/// What the switches need while they run.
pub struct Context<'a> {
    /// A session to the maintenance database (for the fence).
    pub admin: &'a Client,
    /// The application database.
    pub database: &'a str,
    /// For webhooks.
    pub http: &'a HttpClient,
    /// Extra environment for commands (`SNAPGUARD_DEPLOY_ID`, …).
    pub env: Vec<(String, String)>,
}

impl Switch {
    /// `command`, `http`, `file` or `postgres_fence`.
    pub fn kind(&self) -> &'static str {
        match self {
            Switch::Command(_) => "command",
            Switch::Http(_) => "http",
            Switch::File(_) => "file",
            Switch::Fence(_) => "postgres_fence",
        }
    }

    /// A one-line description without secrets, for logs and plans.
    pub fn describe(&self) -> String {
        match self {
            Switch::Command(c) => format!("command `{}` / `{}`", c.on, c.off),
            Switch::Http(h) => format!(
                "http {} {} / {} {}",
                h.on.request.method,
                http::redact(h.on.request.url.expose()),
                h.off.request.method,
                http::redact(h.off.request.url.expose())
            ),
            Switch::File(f) => format!("flag file `{}`", f.path.display()),
            Switch::Fence(f) => format!("postgres_fence on role(s) {}", f.roles.join(", ")),
        }
    }

    fn error(
        &self,
        index: usize,
        direction: &'static str,
        source: impl Into<BoxError>,
    ) -> MaintenanceError {
        MaintenanceError {
            index,
            what: self.describe(),
            direction,
            source: source.into(),
        }
    }

    /// Checks what can be checked without changing anything.
    pub async fn preflight(&self, index: usize, admin: &Client) -> Result<(), MaintenanceError> {
        match self {
            Switch::Fence(f) => fence::preflight(admin, &f.roles)
                .await
                .map_err(|e| self.error(index, "on", e)),
            Switch::File(f) => match f.path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(self.error(
                    index,
                    "on",
                    format!("the flag file's folder `{}` does not exist", dir.display()),
                )),
                _ => Ok(()),
            },
            Switch::Command(_) | Switch::Http(_) => Ok(()),
        }
    }

    /// Records what `off` will need; changes nothing.
    pub async fn prepare(&self, index: usize, admin: &Client) -> Result<Engaged, MaintenanceError> {
        let mut engaged = Engaged {
            index,
            kind: self.kind().into(),
            flag_existed: false,
            roles: Vec::new(),
        };
        match self {
            Switch::File(f) => engaged.flag_existed = f.path.exists(),
            Switch::Fence(f) => {
                engaged.roles = fence::read(admin, &f.roles)
                    .await
                    .map_err(|e| self.error(index, "on", e))?;
            }
            Switch::Command(_) | Switch::Http(_) => {}
        }
        Ok(engaged)
    }

    /// Turns the switch on.
    pub async fn on(&self, engaged: &Engaged, cx: &Context<'_>) -> Result<(), MaintenanceError> {
        let index = engaged.index;
        let result: Result<(), BoxError> = match self {
            Switch::Command(c) => run_command("maintenance.command.on", &c.on, c.timeout, cx).await,
            Switch::Http(h) => call(&h.on, h.retries, cx.http).await,
            Switch::File(f) => {
                if engaged.flag_existed {
                    tracing::warn!(path = %f.path.display(), "the maintenance flag file already exists; it is left as it is afterwards");
                    Ok(())
                } else {
                    std::fs::write(&f.path, &f.content)
                        .map_err(|e| format!("cannot write `{}`: {e}", f.path.display()).into())
                }
            }
            Switch::Fence(f) => fence::raise(cx.admin, &engaged.roles, cx.database, f.wait)
                .await
                .map_err(Into::into),
        };
        result.map_err(|e| self.error(index, "on", e))?;
        tracing::info!(switch = index + 1, what = %self.describe(), "maintenance on");
        Ok(())
    }

    /// Turns the switch off, from the record made before it went on.
    pub async fn off(&self, engaged: &Engaged, cx: &Context<'_>) -> Result<(), MaintenanceError> {
        let index = engaged.index;
        let result: Result<(), BoxError> = match self {
            Switch::Command(c) => {
                run_command("maintenance.command.off", &c.off, c.timeout, cx).await
            }
            Switch::Http(h) => call(&h.off, h.retries, cx.http).await,
            Switch::File(f) => {
                if engaged.flag_existed {
                    Ok(())
                } else {
                    match std::fs::remove_file(&f.path) {
                        Ok(()) => Ok(()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        Err(e) => Err(format!("cannot remove `{}`: {e}", f.path.display()).into()),
                    }
                }
            }
            Switch::Fence(_) => fence::lower(cx.admin, &engaged.roles)
                .await
                .map_err(Into::into),
        };
        result.map_err(|e| self.error(index, "off", e))?;
        tracing::info!(switch = index + 1, what = %self.describe(), "maintenance off");
        Ok(())
    }
}

/// Turns off every switch in `engaged`, newest first, trying each whatever
/// failed before it. Returns the failures.
pub async fn all_off(
    switches: &[Switch],
    engaged: &[Engaged],
    cx: &Context<'_>,
) -> Vec<MaintenanceError> {
    let mut failures = Vec::new();
    for e in engaged.iter().rev() {
        let Some(switch) = switches.get(e.index).filter(|s| s.kind() == e.kind) else {
            failures.push(MaintenanceError {
                index: e.index,
                what: e.kind.clone(),
                direction: "off",
                source: "the configuration no longer has this switch at this position; turn it off by hand".into(),
            });
            continue;
        };
        if let Err(err) = switch.off(e, cx).await {
            tracing::error!(error = %crate::error::chain(&err), "turning a maintenance switch off failed");
            failures.push(err);
        }
    }
    failures
}

async fn run_command(
    key: &'static str,
    command: &str,
    timeout: Duration,
    cx: &Context<'_>,
) -> Result<(), BoxError> {
    Shell {
        key,
        command,
        env: cx.env.clone(),
        timeout: Some(timeout),
        secrets: Vec::new(),
    }
    .run(None)
    .await
    .map_err(Into::into)
}

/// Sends `c`, retrying with a growing pause on an error or an unexpected
/// status.
pub(crate) async fn call(c: &HttpCall, retries: u32, client: &HttpClient) -> Result<(), BoxError> {
    let mut last: String = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt.min(5))).await;
        }
        match client.send(&c.request).await {
            Ok(status)
                if c.expect_status
                    .map_or((200..300).contains(&status), |s| s == status) =>
            {
                return Ok(());
            }
            Ok(status) => {
                last = format!(
                    "{} {} answered {status}, expected {}",
                    c.request.method,
                    http::redact(c.request.url.expose()),
                    c.expect_status
                        .map_or_else(|| "2xx".to_owned(), |s| s.to_string())
                );
            }
            Err(e) => last = crate::error::chain(&e),
        }
        tracing::warn!(attempt = attempt + 1, error = %last, "webhook failed");
    }
    Err(format!("{last} (after {} attempt(s))", retries + 1).into())
}
