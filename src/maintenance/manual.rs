//! `snapguard maintenance on|off`: the switches by hand, outside a deploy.
//! What `off` must undo (a flag file that existed, the fenced roles'
//! attributes) is recorded in the store as [`MANUAL_KEY`] before each
//! switch goes on, as a deploy records it in its journal.

use bytes::Bytes;

use super::{Context, Engaged, MaintenanceError, Switch, all_off};
use crate::store::{ObjectStore, Store, StoreError};

/// Where `maintenance on` records what `off` must undo.
pub const MANUAL_KEY: &str = "maintenance.json";

/// Why switching by hand failed.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// `on` while a record of an earlier `on` exists.
    #[error("maintenance is already on (`{0}` exists); `snapguard maintenance off` first")]
    AlreadyOn(String),
    /// `off` without a record while a fence is configured.
    #[error(
        "there is no record of `snapguard maintenance on`, so the fenced roles' attributes are unknown; after a deploy use `snapguard recover`, else put them back by hand (ALTER ROLE … LOGIN)"
    )]
    NoRecord,
    /// A switch's preflight refused; nothing was switched.
    #[error(transparent)]
    Preflight(MaintenanceError),
    /// The record cannot be read.
    #[error("`{key}` is not valid")]
    BadRecord {
        /// Its address.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A switch failed (after `on` failed, the others were turned off again).
    #[error(transparent)]
    Switch(MaintenanceError),
}

impl ManualError {
    /// Whether nothing was switched.
    pub fn changed_nothing(&self) -> bool {
        matches!(
            self,
            ManualError::AlreadyOn(_) | ManualError::NoRecord | ManualError::Preflight(_)
        )
    }
}

/// Turns every switch on, in order, recording each before it goes on; on a
/// failure, turns the ones already on off again. Returns how many are on.
pub async fn on(
    switches: &[Switch],
    store: &Store,
    cx: &Context<'_>,
) -> Result<usize, ManualError> {
    if store.size(MANUAL_KEY).await?.is_some() {
        return Err(ManualError::AlreadyOn(store.uri(MANUAL_KEY)));
    }
    for (i, switch) in switches.iter().enumerate() {
        switch
            .preflight(i, cx.admin)
            .await
            .map_err(ManualError::Preflight)?;
    }
    let mut engaged: Vec<Engaged> = Vec::new();
    for (i, switch) in switches.iter().enumerate() {
        let result = async {
            let e = switch.prepare(i, cx.admin).await?;
            engaged.push(e.clone());
            let body = serde_json::to_vec_pretty(&engaged).expect("serializable");
            store
                .put(MANUAL_KEY, Bytes::from(body))
                .await
                .map_err(|err| MaintenanceError {
                    index: i,
                    what: switch.describe(),
                    direction: "on",
                    source: err.into(),
                })?;
            switch.on(&e, cx).await
        }
        .await;
        if let Err(e) = result {
            let undone = all_off(switches, &engaged, cx).await;
            if undone.is_empty() {
                let _ = store.delete(MANUAL_KEY).await;
            }
            return Err(ManualError::Switch(e));
        }
    }
    Ok(engaged.len())
}

/// Turns off what the record says `on` turned on (without a record, every
/// switch, unless a fence makes that guesswork), then deletes the record.
pub async fn off(switches: &[Switch], store: &Store, cx: &Context<'_>) -> Result<(), ManualError> {
    let recorded = match store.get(MANUAL_KEY).await {
        Ok(bytes) => Some(bytes),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let engaged: Vec<Engaged> = match recorded {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| ManualError::BadRecord {
            key: store.uri(MANUAL_KEY),
            source,
        })?,
        None if switches.iter().any(|s| matches!(s, Switch::Fence(_))) => {
            return Err(ManualError::NoRecord);
        }
        None => switches
            .iter()
            .enumerate()
            .map(|(index, s)| Engaged {
                index,
                kind: s.kind().into(),
                flag_existed: false,
                roles: Vec::new(),
            })
            .collect(),
    };
    if let Some(first) = all_off(switches, &engaged, cx).await.into_iter().next() {
        return Err(ManualError::Switch(first));
    }
    store.delete(MANUAL_KEY).await?;
    Ok(())
}
