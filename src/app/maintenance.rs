//! `snapguard maintenance on|off`: the lock, then the switches by hand
//! ([`crate::maintenance::manual`]).

use super::open_store;
use crate::cli::MaintenanceCommand;
use crate::config::Config;
use crate::error::Error;
use crate::maintenance::{self, manual};
use std::time::Duration;

/// `snapguard maintenance on|off`.
pub async fn maintenance(
    config: &Config,
    command: MaintenanceCommand,
    json: bool,
) -> Result<(), Error> {
    let info = config.database_url()?;
    let store = open_store(config).await?;
    // The per-database lock every changing command shares: no switching
    // inside a running deploy's window.
    let admin = super::command_lock(config, "maintenance", false, Duration::ZERO).await?;
    let http = crate::http::HttpClient::new();
    let cx = maintenance::Context {
        admin: &admin,
        database: info.dbname(),
        http: &http,
        env: Vec::new(),
    };
    let (step, result) = match command {
        MaintenanceCommand::On => (
            "maintenance on",
            manual::on(&config.maintenance, &store, &cx).await.map(|n| {
                (
                    format!("maintenance on ({n} switch(es)); `snapguard maintenance off` ends it"),
                    serde_json::json!({ "maintenance": "on", "switches": n }),
                )
            }),
        ),
        MaintenanceCommand::Off => (
            "maintenance off",
            manual::off(&config.maintenance, &store, &cx)
                .await
                .map(|()| {
                    (
                        "maintenance off".to_owned(),
                        serde_json::json!({ "maintenance": "off" }),
                    )
                }),
        ),
    };
    match result {
        Ok((_, value)) if json => {
            super::print_json(&value);
            Ok(())
        }
        Ok((done, _)) => {
            crate::outln!("{done}");
            Ok(())
        }
        Err(e) if e.changed_nothing() => Err(Error::nothing_changed(step, e)),
        Err(e) => Err(Error::failed(step, e)),
    }
}
