//! The application release a deploy ships: the `release.command` and
//! `release.rollback` hooks, the health check, and the store's ledger of
//! successful deploys, which is where "the previous release" comes from.

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::config::{HealthConfig, ReleaseConfig};
use crate::http::{self, HttpClient, Request};
use crate::shell::{Shell, ShellError};
use crate::store::{ObjectStore, StoreError};

/// The ledger's key under the store prefix.
pub const LEDGER_KEY: &str = "releases.json";

/// One successful deploy in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerEntry {
    /// The release that went live.
    pub release: String,
    /// The deploy that shipped it.
    pub deploy_id: String,
    /// The snapshot taken before it.
    pub snapshot_id: Option<String>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}

/// `releases.json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    /// Oldest first.
    pub releases: Vec<LedgerEntry>,
}

/// Reading or writing the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed.
    #[error("the release ledger `{uri}`")]
    Store {
        /// Its address.
        uri: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// It is not valid JSON.
    #[error("the release ledger `{uri}` is not valid: {message}")]
    Corrupt {
        /// Its address.
        uri: String,
        /// The parser's message.
        message: String,
    },
}

impl Ledger {
    /// Reads the ledger; a store without one has an empty ledger.
    pub async fn read(store: &impl ObjectStore) -> Result<Ledger, LedgerError> {
        let uri = store.uri(LEDGER_KEY);
        let bytes = match store.get(LEDGER_KEY).await {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound { .. }) => return Ok(Ledger::default()),
            Err(source) => return Err(LedgerError::Store { uri, source }),
        };
        serde_json::from_slice(&bytes).map_err(|e| LedgerError::Corrupt {
            uri,
            message: e.to_string(),
        })
    }

    /// The release live now, as far as snapguard knows.
    pub fn current(&self) -> Option<&str> {
        self.releases.last().map(|e| e.release.as_str())
    }

    /// Appends `entry` and writes the ledger back.
    pub async fn append(store: &impl ObjectStore, entry: LedgerEntry) -> Result<(), LedgerError> {
        let mut ledger = Ledger::read(store).await?;
        ledger.releases.push(entry);
        let body = serde_json::to_vec_pretty(&ledger).expect("serializable");
        store
            .put(LEDGER_KEY, Bytes::from(body))
            .await
            .map_err(|source| LedgerError::Store {
                uri: store.uri(LEDGER_KEY),
                source,
            })
    }
}

/// The environment the hooks see.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct HookEnv {
    /// `SNAPGUARD_RELEASE`.
    pub release: Option<String>,
    /// `SNAPGUARD_PREVIOUS_RELEASE`.
    pub previous_release: Option<String>,
    /// `SNAPGUARD_SNAPSHOT_ID`.
    pub snapshot_id: Option<String>,
    /// `SNAPGUARD_DEPLOY_ID`.
    pub deploy_id: String,
    /// `SNAPGUARD_OUTCOME`: `succeeded` or `rolled_back` for the hooks that
    /// run once that is settled (maintenance off at the end of a deploy,
    /// `release.rollback` and maintenance off after the database was put
    /// back); empty before.
    #[serde(default)]
    pub outcome: Option<String>,
}

impl HookEnv {
    /// As environment variables; unknown values are empty strings.
    pub fn vars(&self) -> Vec<(String, String)> {
        let v = |o: &Option<String>| o.clone().unwrap_or_default();
        vec![
            ("SNAPGUARD_RELEASE".into(), v(&self.release)),
            (
                "SNAPGUARD_PREVIOUS_RELEASE".into(),
                v(&self.previous_release),
            ),
            ("SNAPGUARD_SNAPSHOT_ID".into(), v(&self.snapshot_id)),
            ("SNAPGUARD_DEPLOY_ID".into(), self.deploy_id.clone()),
            ("SNAPGUARD_OUTCOME".into(), v(&self.outcome)),
        ]
    }
}

/// Runs `release.command`.
pub async fn ship(config: &ReleaseConfig, env: &HookEnv) -> Result<(), ShellError> {
    match &config.command {
        Some(command) => hook("release.command", command, config, env).await,
        None => Ok(()),
    }
}

/// Runs `release.rollback`, if configured.
pub async fn roll_back(config: &ReleaseConfig, env: &HookEnv) -> Result<(), ShellError> {
    match &config.rollback {
        Some(command) => hook("release.rollback", command, config, env).await,
        None => Ok(()),
    }
}

async fn hook(
    key: &'static str,
    command: &str,
    config: &ReleaseConfig,
    env: &HookEnv,
) -> Result<(), ShellError> {
    Shell {
        key,
        command,
        env: env.vars(),
        timeout: Some(config.timeout),
        secrets: Vec::new(),
    }
    // Not cancellable: a half-run release command is worse than a finished
    // one that the rollback then undoes.
    .run(None)
    .await
}

/// The release never became healthy.
#[derive(Debug, thiserror::Error)]
#[error("`{url}` (release.health.url) was not healthy within {timeout:?}; last: {last}")]
pub struct Unhealthy {
    /// Host and path.
    pub url: String,
    /// `release.health.timeout`.
    pub timeout: std::time::Duration,
    /// The last answer or error.
    pub last: String,
}

/// Polls the health URL until it answers 2xx or the timeout runs out.
pub async fn wait_healthy(config: &HealthConfig, client: &HttpClient) -> Result<(), Unhealthy> {
    let started = Instant::now();
    let shown = http::redact(config.url.expose());
    let request = Request {
        method: "GET".into(),
        url: config.url.clone(),
        headers: Vec::new(),
        body: None,
        timeout: config.interval.max(std::time::Duration::from_secs(5)),
    };
    let mut last;
    loop {
        match client.send(&request).await {
            Ok(status) if (200..300).contains(&status) => {
                tracing::info!(url = %shown, status, seconds = format!("{:.1}", started.elapsed().as_secs_f64()), "release healthy");
                return Ok(());
            }
            Ok(status) => last = format!("HTTP {status}"),
            Err(e) => last = crate::error::chain(&e),
        }
        if started.elapsed() + config.interval > config.timeout {
            return Err(Unhealthy {
                url: shown,
                timeout: config.timeout,
                last,
            });
        }
        tracing::info!(url = %shown, last = %last, "waiting for the release to become healthy");
        tokio::time::sleep(config.interval).await;
    }
}
