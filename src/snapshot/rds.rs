//! `snapshot.provider: rds`: the deploy's snapshot is an RDS snapshot of
//! the whole instance, and the rollback puts an instance restored from it
//! under the instance's name.
//!
//! Before the migrations: `CreateDBSnapshot`, waited on until RDS says
//! `available`. The rollback renames the instance aside (`ModifyDBInstance`
//! with `NewDBInstanceIdentifier`, applied at once) and restores the
//! snapshot under the original identifier (`RestoreDBInstanceFromDBSnapshot`
//! with the renamed instance's class, network and parameter group), so the
//! endpoint the application connects to, which RDS derives from the
//! identifier, leads to the restored instance. The renamed instance is
//! kept: deleting it is the operator's decision.
//!
//! Every call that changes something is journaled before it is made
//! ([`SwapPhase`]), and each step of the swap is decided from what RDS
//! reports, so `recover` resumes a swap a killed runner left half-done
//! without repeating a call.

use std::time::{Duration, Instant};

use aws_sdk_rds::Client;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};

use crate::config::{RdsConfig, RdsTarget};
use crate::db::ConnInfo;

/// How often RDS is asked whether a wait is over.
pub(super) const POLL: Duration = Duration::from_secs(5);

/// The deploy's RDS snapshot and how far the rollback's swap got:
/// journaled before the snapshot is requested.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RdsSnapshot {
    /// The instance (`DBInstanceIdentifier`).
    pub instance: String,
    /// The snapshot (`DBSnapshotIdentifier`).
    pub snapshot: String,
    /// The name the rollback renames the failed instance to.
    pub aside: String,
    /// How far the rollback's swap got; `None` until the write guard let
    /// it start.
    #[serde(default)]
    pub swap: Option<SwapPhase>,
}

impl RdsSnapshot {
    /// The names for deploy `short` (its id's short form) of `instance`.
    pub fn named(instance: &str, short: &str) -> RdsSnapshot {
        // RDS identifiers take letters, digits and hyphens.
        let short = short.replace('_', "-");
        RdsSnapshot {
            instance: instance.to_owned(),
            snapshot: format!("snapguard-{instance}-{short}"),
            aside: format!("{instance}-failed-{short}"),
            swap: None,
        }
    }
}

/// The rollback's swap, journaled before each call that changes RDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapPhase {
    /// The write guard passed; the instance is (being) renamed aside.
    Renaming,
    /// The instance is aside; the snapshot is (being) restored under its
    /// name.
    Restoring,
}

/// What `DescribeDBInstances` says of one instance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Instance {
    /// `DBInstanceIdentifier`.
    pub id: String,
    /// `DBInstanceStatus`: `available`, `renaming`, `creating`, ….
    pub status: String,
    /// `Engine`.
    pub engine: String,
    /// `Endpoint.Address`, once it has one.
    pub address: Option<String>,
    /// `DBInstanceClass`.
    pub class: Option<String>,
    /// `DBClusterIdentifier`: an Aurora instance.
    pub cluster: Option<String>,
    #[serde(skip)]
    subnet_group: Option<String>,
    #[serde(skip)]
    security_groups: Vec<String>,
    #[serde(skip)]
    pub(super) parameter_group: Option<String>,
    #[serde(skip)]
    multi_az: Option<bool>,
    #[serde(skip)]
    pub(super) publicly_accessible: Option<bool>,
    #[serde(skip)]
    port: Option<i32>,
}

/// A snapshot snapguard took of the instance, as RDS lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// `DBSnapshotIdentifier`.
    pub id: String,
    /// The instance (or Aurora cluster) it was taken of.
    pub instance: String,
    /// `Status`.
    pub status: String,
    /// `SnapshotCreateTime`.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// `AllocatedStorage`, GiB.
    pub allocated_gib: Option<i32>,
}

/// Something RDS refused or reported.
#[derive(Debug, thiserror::Error)]
pub enum RdsError {
    /// No such instance.
    #[error(
        "RDS instance `{instance}` does not exist in this account and region (`snapshot.rds.instance`, `snapshot.rds.region`)"
    )]
    NoInstance {
        /// The identifier.
        instance: String,
    },
    /// No such Aurora cluster.
    #[error(
        "Aurora cluster `{cluster}` does not exist in this account and region (`snapshot.rds.cluster`, `snapshot.rds.region`)"
    )]
    NoCluster {
        /// The identifier.
        cluster: String,
    },
    /// The cluster is busy.
    #[error(
        "Aurora cluster `{cluster}` is `{status}`, not `available`: a snapshot or a clone would wait on it; deploy once it is available"
    )]
    ClusterNotAvailable {
        /// The identifier.
        cluster: String,
        /// Its status.
        status: String,
    },
    /// A cluster with no writer instance.
    #[error("Aurora cluster `{cluster}` has no writer instance: there is no database to deploy to")]
    NoWriter {
        /// The identifier.
        cluster: String,
    },
    /// The snapshot's time is out of the cluster's backup retention.
    #[error(
        "Aurora cluster `{cluster}` cannot be cloned at {at} (its earliest restorable time is {earliest}): the cluster is left as it is; cluster snapshot `{snapshot}` is the way back (`RestoreDBClusterFromSnapshot`)"
    )]
    NotRestorable {
        /// The cluster.
        cluster: String,
        /// The snapshot's time.
        at: chrono::DateTime<chrono::Utc>,
        /// `EarliestRestorableTime`.
        earliest: chrono::DateTime<chrono::Utc>,
        /// The deploy's cluster snapshot.
        snapshot: String,
    },
    /// None of the swap's clusters exists.
    #[error(
        "none of Aurora clusters `{cluster}`, `{aside}` and `{clone}` exists where the swap needs one: it cannot go on; see the RDS console's events for them"
    )]
    ClusterLost {
        /// The cluster.
        cluster: String,
        /// Where it was being renamed to.
        aside: String,
        /// The clone.
        clone: String,
    },
    /// The instance is busy.
    #[error(
        "RDS instance `{instance}` is `{status}`, not `available`: a snapshot or a restore would wait on it; deploy once it is available"
    )]
    NotAvailable {
        /// The identifier.
        instance: String,
        /// Its status.
        status: String,
    },
    /// An Aurora cluster member.
    #[error(
        "RDS instance `{instance}` belongs to Aurora cluster `{cluster}`: its storage is the cluster's, and `snapshot.provider: rds` restores instances; use `snapshot.provider: aurora-clone` with `snapshot.rds.cluster: {cluster}`"
    )]
    InCluster {
        /// The identifier.
        instance: String,
        /// The cluster.
        cluster: String,
    },
    /// Not PostgreSQL.
    #[error("RDS {kind} `{id}` runs `{engine}`, not {expected}")]
    NotPostgres {
        /// `instance` or `cluster`.
        kind: &'static str,
        /// The identifier.
        id: String,
        /// What it must run.
        expected: &'static str,
        /// Its engine.
        engine: String,
    },
    /// The deploy's snapshot is not there to restore.
    #[error(
        "RDS snapshot `{snapshot}` is {state}: the instance is left as it is (not renamed aside)"
    )]
    SnapshotNotReady {
        /// The snapshot.
        snapshot: String,
        /// What RDS says of it.
        state: String,
    },
    /// Neither the instance nor its renamed copy exists.
    #[error(
        "neither RDS instance `{instance}` nor `{aside}` exists: the swap cannot go on; see the RDS console's events for both"
    )]
    Lost {
        /// The instance.
        instance: String,
        /// Where it was being renamed to.
        aside: String,
    },
    /// A wait ran out.
    #[error(
        "waited {within:?} (`snapshot.rds.wait`) for {what}; it was `{last}`: RDS may still be working on it, see the RDS console"
    )]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        within: Duration,
        /// The last status seen.
        last: String,
    },
    /// A call failed.
    #[error(
        "RDS {op} failed{}",
        match (.code, .message) {
            (Some(c), Some(m)) => format!(" ({c}: {m})"),
            (Some(c), None) => format!(" ({c})"),
            _ => String::new(),
        }
    )]
    Call {
        /// The operation.
        op: &'static str,
        /// RDS's error code, when it gave one.
        code: Option<String>,
        /// RDS's message, when it gave one (the SDK's error says only
        /// "service error").
        message: Option<String>,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl RdsError {
    pub(super) fn call<E>(op: &'static str) -> impl FnOnce(SdkError<E>) -> RdsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| RdsError::Call {
            op,
            code: e.code().map(str::to_owned),
            message: e.message().map(str::to_owned),
            source: Box::new(e),
        }
    }

    pub(super) fn code(&self) -> Option<&str> {
        match self {
            RdsError::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// RDS as configured.
pub struct Rds<'a> {
    pub(super) client: Client,
    pub(super) config: &'a RdsConfig,
}

impl<'a> Rds<'a> {
    /// A client with the standard credential chain, `region` and
    /// `endpoint` as configured.
    pub async fn new(config: &'a RdsConfig) -> Rds<'a> {
        let shared = crate::store::s3::aws_shared_config(config.region.clone()).await;
        let mut builder = aws_sdk_rds::config::Builder::from(&shared);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Rds {
            client: Client::from_conf(builder.build()),
            config,
        }
    }

    /// Proves the instance can be snapshotted now and restored later: it
    /// exists, is available, is a PostgreSQL instance of its own (not an
    /// Aurora cluster's). Warns when `database.url` does not name its
    /// endpoint: the rollback restores the instance, whatever the
    /// application connects to.
    pub async fn preflight(&self, app: &ConnInfo) -> Result<Instance, RdsError> {
        let instance = self.config.target.id();
        let found = self
            .describe(instance)
            .await?
            .ok_or_else(|| RdsError::NoInstance {
                instance: instance.to_owned(),
            })?;
        if let Some(cluster) = &found.cluster {
            return Err(RdsError::InCluster {
                instance: instance.to_owned(),
                cluster: cluster.clone(),
            });
        }
        if !found.engine.starts_with("postgres") {
            return Err(RdsError::NotPostgres {
                kind: "instance",
                id: instance.to_owned(),
                expected: "PostgreSQL",
                engine: found.engine.clone(),
            });
        }
        if found.status != "available" {
            return Err(RdsError::NotAvailable {
                instance: instance.to_owned(),
                status: found.status.clone(),
            });
        }
        if let Some(address) = &found.address
            && !app.hosts().iter().any(|h| h.eq_ignore_ascii_case(address))
        {
            tracing::warn!(instance = %instance, endpoint = %address, hosts = %app.hosts().join(","), "`database.url` does not name the instance's endpoint (a proxy or a DNS alias may be in between): make sure it is the database on this instance, which a rollback replaces");
        }
        Ok(found)
    }

    /// Takes `record.snapshot` of the instance and waits until it is
    /// available.
    pub async fn snapshot(&self, record: &RdsSnapshot) -> Result<(), RdsError> {
        self.client
            .create_db_snapshot()
            .db_instance_identifier(&record.instance)
            .db_snapshot_identifier(&record.snapshot)
            .send()
            .await
            .map_err(RdsError::call("CreateDBSnapshot"))?;
        self.wait_snapshot(&record.snapshot).await
    }

    /// Waits until snapshot `name` is available, logging its progress.
    async fn wait_snapshot(&self, name: &str) -> Result<(), RdsError> {
        self.wait_snapshot_with(name, || self.snapshot_status(name))
            .await
    }

    /// Waits until `status` (status, percent done) says snapshot `name`
    /// is available, logging its progress: an instance's or a cluster's.
    pub(super) async fn wait_snapshot_with<F, Fut>(
        &self,
        name: &str,
        status: F,
    ) -> Result<(), RdsError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(String, Option<i32>), RdsError>>,
    {
        let within = self.config.wait;
        let started = Instant::now();
        loop {
            let (status, progress) = status().await?;
            if status == "available" {
                return Ok(());
            }
            if matches!(status.as_str(), "failed" | "deleted" | "missing") {
                return Err(RdsError::SnapshotNotReady {
                    snapshot: name.to_owned(),
                    state: status,
                });
            }
            if started.elapsed() >= within {
                return Err(RdsError::Timeout {
                    what: format!("snapshot `{name}`"),
                    within,
                    last: status,
                });
            }
            tracing::info!(snapshot = %name, status = %status, percent = progress.unwrap_or(0), "waiting for the RDS snapshot");
            tokio::time::sleep(POLL).await;
        }
    }

    /// A snapshot's status and percent done; `missing` when RDS has none
    /// by that name.
    async fn snapshot_status(&self, name: &str) -> Result<(String, Option<i32>), RdsError> {
        match self
            .client
            .describe_db_snapshots()
            .db_snapshot_identifier(name)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_snapshots()
                .first()
                .map(|s| {
                    (
                        s.status().unwrap_or("unknown").to_owned(),
                        s.percent_progress(),
                    )
                })
                .unwrap_or(("missing".into(), None))),
            Err(e) => {
                let e = RdsError::call("DescribeDBSnapshots")(e);
                if e.code() == Some("DBSnapshotNotFound") {
                    Ok(("missing".into(), None))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The manual snapshots of the instance (or the Aurora cluster) whose
    /// names snapguard gives (`snapguard-<id>-…`), oldest first.
    pub async fn list(&self) -> Result<Vec<Listed>, RdsError> {
        let RdsTarget::Instance(instance) = &self.config.target else {
            return self.list_cluster_snapshots().await;
        };
        snapguard_snapshots(instance, |marker| async move {
            let page = self
                .client
                .describe_db_snapshots()
                .db_instance_identifier(instance)
                .snapshot_type("manual")
                .set_marker(marker)
                .send()
                .await
                .map_err(RdsError::call("DescribeDBSnapshots"))?;
            let listed = page
                .db_snapshots()
                .iter()
                .filter_map(|s| {
                    Some(Listed {
                        id: s.db_snapshot_identifier()?.to_owned(),
                        instance: instance.clone(),
                        status: s.status().unwrap_or("unknown").to_owned(),
                        created: s
                            .snapshot_create_time()
                            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0)),
                        allocated_gib: s.allocated_storage(),
                    })
                })
                .collect();
            Ok((listed, page.marker().map(str::to_owned)))
        })
        .await
    }

    /// Deletes snapshot `id` (`prune --rds`).
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), RdsError> {
        if let RdsTarget::Cluster(_) = &self.config.target {
            return self.delete_cluster_snapshot(id).await;
        }
        self.client
            .delete_db_snapshot()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map_err(RdsError::call("DeleteDBSnapshot"))?;
        Ok(())
    }

    /// Before the swap: the snapshot must be there to restore, or the
    /// instance is not touched.
    pub async fn check_restorable(&self, record: &RdsSnapshot) -> Result<(), RdsError> {
        let (status, _) = self.snapshot_status(&record.snapshot).await?;
        if status == "available" {
            Ok(())
        } else {
            Err(RdsError::SnapshotNotReady {
                snapshot: record.snapshot.clone(),
                state: status,
            })
        }
    }

    /// Renames the instance aside, unless RDS shows it done or under way,
    /// and waits until the name is free.
    pub async fn rename_aside(&self, record: &RdsSnapshot) -> Result<(), RdsError> {
        let lost = || RdsError::Lost {
            instance: record.instance.clone(),
            aside: record.aside.clone(),
        };
        let status = |id: &str| {
            let id = id.to_owned();
            async move { Ok(self.describe(&id).await?.map(|i| i.status)) }
        };
        let modify = || async {
            tracing::info!(instance = %record.instance, aside = %record.aside, "renaming the RDS instance aside");
            self.client
                .modify_db_instance()
                .db_instance_identifier(&record.instance)
                .new_db_instance_identifier(&record.aside)
                .apply_immediately(true)
                .send()
                .await
                .map(|_| ())
                .map_err(RdsError::call("ModifyDBInstance"))
        };
        self.rename(&record.instance, &record.aside, status, modify, lost)
            .await
    }

    /// `from` renamed to `to` (an instance's or a cluster's: `status`
    /// says what RDS has by a name, `modify` asks for the rename), decided
    /// from what RDS shows: asked for unless `to` exists or `from` is
    /// `renaming` already (a `recover` after a killed runner), then waited
    /// on until `from` is gone and `to` available. `lost` when RDS has
    /// neither.
    pub(super) async fn rename<S, SFut, M, MFut>(
        &self,
        from: &str,
        to: &str,
        status: S,
        modify: M,
        lost: impl Fn() -> RdsError,
    ) -> Result<(), RdsError>
    where
        S: Fn(&str) -> SFut,
        SFut: std::future::Future<Output = Result<Option<String>, RdsError>>,
        M: FnOnce() -> MFut,
        MFut: std::future::Future<Output = Result<(), RdsError>>,
    {
        match (status(from).await?, status(to).await?) {
            (None, None) => return Err(lost()),
            // Renamed, or being renamed: wait below.
            (_, Some(_)) => {}
            (Some(s), None) if s == "renaming" => {}
            (Some(_), None) => modify().await?,
        }
        self.wait(&format!("`{from}` renamed to `{to}`"), || async {
            Ok(match (status(from).await?, status(to).await?) {
                (None, Some(t)) if t == "available" => None,
                (None, Some(t)) => Some(t),
                (Some(s), _) => Some(s),
                (None, None) => Some("not found under either name".into()),
            })
        })
        .await
    }

    /// Restores the snapshot under the instance's name (unless RDS shows
    /// it requested already), with the renamed instance's class, network
    /// and parameter group, and waits until it is available.
    pub async fn restore(&self, record: &RdsSnapshot) -> Result<(), RdsError> {
        if self.describe(&record.instance).await?.is_none() {
            let like = self
                .describe(&record.aside)
                .await?
                .ok_or_else(|| RdsError::Lost {
                    instance: record.instance.clone(),
                    aside: record.aside.clone(),
                })?;
            tracing::info!(instance = %record.instance, snapshot = %record.snapshot, "restoring the RDS snapshot under the instance's name");
            let request = self
                .client
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&record.instance)
                .db_snapshot_identifier(&record.snapshot)
                .set_db_instance_class(like.class.clone())
                .set_db_subnet_group_name(like.subnet_group.clone())
                .set_vpc_security_group_ids(
                    (!like.security_groups.is_empty()).then(|| like.security_groups.clone()),
                )
                .set_db_parameter_group_name(like.parameter_group.clone())
                .set_multi_az(like.multi_az)
                .set_publicly_accessible(like.publicly_accessible)
                .set_port(like.port);
            match request.send().await {
                Ok(_) => {}
                // Another `recover` got there first.
                Err(e) if e.code() == Some("DBInstanceAlreadyExists") => {}
                Err(e) => return Err(RdsError::call("RestoreDBInstanceFromDBSnapshot")(e)),
            }
        }
        self.wait(
            &format!("`{}` restored from `{}`", record.instance, record.snapshot),
            || async {
                Ok(not_yet_available(
                    self.describe(&record.instance).await?.map(|i| i.status),
                ))
            },
        )
        .await
    }

    /// Polls `status` (`None`: done; `Some(status)`: not yet) until done
    /// or `snapshot.rds.wait` ran out.
    pub(super) async fn wait<F, Fut>(&self, what: &str, status: F) -> Result<(), RdsError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, RdsError>>,
    {
        let within = self.config.wait;
        let started = Instant::now();
        loop {
            let Some(last) = status().await? else {
                return Ok(());
            };
            if started.elapsed() >= within {
                return Err(RdsError::Timeout {
                    what: what.to_owned(),
                    within,
                    last,
                });
            }
            tracing::info!(status = %last, "waiting for {what}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// The instance named `id`, if RDS has one.
    pub(super) async fn describe(&self, id: &str) -> Result<Option<Instance>, RdsError> {
        let out = match self
            .client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("DBInstanceNotFound") => return Ok(None),
            Err(e) => return Err(RdsError::call("DescribeDBInstances")(e)),
        };
        Ok(out.db_instances().first().map(|i| Instance {
            id: i.db_instance_identifier().unwrap_or(id).to_owned(),
            status: i.db_instance_status().unwrap_or("unknown").to_owned(),
            engine: i.engine().unwrap_or_default().to_owned(),
            address: i.endpoint().and_then(|e| e.address()).map(str::to_owned),
            class: i.db_instance_class().map(str::to_owned),
            cluster: i.db_cluster_identifier().map(str::to_owned),
            subnet_group: i
                .db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(str::to_owned),
            security_groups: i
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect(),
            parameter_group: i
                .db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .map(str::to_owned),
            multi_az: i.multi_az(),
            publicly_accessible: i.publicly_accessible(),
            port: i.endpoint().and_then(|e| e.port()),
        }))
    }
}

/// The snapshots of instance or cluster `id` whose names snapguard gives
/// (`snapguard-<id>-…`), oldest first, from every page of a
/// `Describe…Snapshots` listing: `page(marker)` gives one page's
/// snapshots and the next page's marker.
pub(super) async fn snapguard_snapshots<F, Fut>(id: &str, page: F) -> Result<Vec<Listed>, RdsError>
where
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Listed>, Option<String>), RdsError>>,
{
    let prefix = format!("snapguard-{id}-");
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let (listed, next) = page(marker).await?;
        out.extend(listed.into_iter().filter(|l| l.id.starts_with(&prefix)));
        marker = next;
        if marker.is_none() {
            break;
        }
    }
    // The names carry the deploy's time stamp.
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// For [`Rds::wait`]: `None` once `status` (what RDS says of an instance
/// or cluster, `None` when it has none by that name) is `available`.
pub(super) fn not_yet_available(status: Option<String>) -> Option<String> {
    match status {
        Some(s) if s == "available" => None,
        Some(s) => Some(s),
        None => Some("not found".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rds_identifiers_unique_to_the_deploy() {
        let r = RdsSnapshot::named("prod-db", "20261203t140342z_3fa9");
        assert_eq!(r.snapshot, "snapguard-prod-db-20261203t140342z-3fa9");
        assert_eq!(r.aside, "prod-db-failed-20261203t140342z-3fa9");
        // The longest instance the config takes still fits RDS's 63.
        let longest = "a".repeat(34);
        assert!(
            RdsSnapshot::named(&longest, "20261203t140342z_3fa9")
                .aside
                .len()
                <= 63
        );
    }
}
