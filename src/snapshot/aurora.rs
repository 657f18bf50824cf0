//! `snapshot.provider: aurora-clone`: the deploy's snapshot is an Aurora
//! cluster snapshot and the time it was taken at; the rollback clones the
//! cluster as it was then and swaps the clone in under the cluster's name.
//!
//! Before the migrations: `CreateDBClusterSnapshot`, waited on until
//! `available`; its `SnapshotCreateTime` is the point the rollback goes
//! back to. The rollback first makes a copy-on-write clone of the cluster
//! at that time (`RestoreDBClusterToPointInTime`, `RestoreType:
//! copy-on-write`: minutes whatever the size, sharing the cluster's
//! storage) with the cluster's network, parameter group, port, deletion
//! protection, IAM authentication and Serverless v2 capacity, and an
//! instance for each of the cluster's (same class, writer first), while
//! the failed cluster still serves; then renames the cluster aside and the
//! clone to the cluster's name (`ModifyDBCluster` with
//! `NewDBClusterIdentifier`), so the cluster endpoint, which Aurora
//! derives from the identifier, leads to the clone. The failed cluster and
//! its instances are kept.
//!
//! Each phase is journaled before its first call ([`ClonePhase`]), and
//! each call is decided from what RDS reports, so `recover` resumes a swap
//! a killed runner left half-done without repeating a call. The cluster
//! snapshot stays as the way back should the clone fail (restored by hand,
//! `RestoreDBClusterFromSnapshot`).

use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::primitives::DateTime as AwsTime;
use aws_sdk_rds::types::ServerlessV2ScalingConfiguration;
use chrono::{DateTime, Utc};

use super::rds::{Listed, Rds, RdsError, not_yet_available, snapguard_snapshots};
use crate::db::ConnInfo;

/// The deploy's cluster snapshot and how far the rollback's swap got:
/// journaled before the snapshot is requested.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuroraClone {
    /// The cluster (`DBClusterIdentifier`).
    pub cluster: String,
    /// The cluster snapshot (`DBClusterSnapshotIdentifier`).
    pub snapshot: String,
    /// The clone's name until it takes the cluster's.
    pub clone: String,
    /// The name the rollback renames the failed cluster to.
    pub aside: String,
    /// The deploy's short id, in the clone's instances' names.
    pub short: String,
    /// The snapshot's `SnapshotCreateTime`: the time the clone is made at.
    /// `None` until the snapshot is available.
    #[serde(default)]
    pub restore_to: Option<DateTime<Utc>>,
    /// How far the rollback's swap got; `None` until the write guard let
    /// it start.
    #[serde(default)]
    pub swap: Option<ClonePhase>,
}

impl AuroraClone {
    /// The names for deploy `short` (its id's short form) of `cluster`.
    pub fn named(cluster: &str, short: &str) -> AuroraClone {
        // RDS identifiers take letters, digits and hyphens.
        let short = short.replace('_', "-");
        AuroraClone {
            cluster: cluster.to_owned(),
            snapshot: format!("snapguard-{cluster}-{short}"),
            clone: format!("{cluster}-clone-{short}"),
            aside: format!("{cluster}-failed-{short}"),
            short,
            restore_to: None,
            swap: None,
        }
    }

    /// The clone's `n`th instance (from 1). Instance names are unique in
    /// the region, and are not renamed with their cluster.
    fn instance(&self, n: usize) -> String {
        format!("{}-{n}-{}", self.cluster, self.short)
    }
}

/// The rollback's swap, journaled before each phase's first call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClonePhase {
    /// The write guard passed; the clone and its instances are (being)
    /// made. The cluster is untouched.
    Cloning,
    /// The clone is ready; the cluster is (being) renamed aside.
    Renaming,
    /// The cluster is aside; the clone is (being) renamed to its name.
    Promoting,
}

/// What `DescribeDBClusters` says of one cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cluster {
    /// `DBClusterIdentifier`.
    pub id: String,
    /// `Status`.
    pub status: String,
    /// `Engine`.
    pub engine: String,
    /// `EngineVersion`.
    pub version: Option<String>,
    /// `Endpoint`: the writer's.
    pub endpoint: Option<String>,
    /// `DBClusterMembers`, the writer first.
    pub members: Vec<Member>,
    #[serde(skip)]
    reader_endpoint: Option<String>,
    #[serde(skip)]
    subnet_group: Option<String>,
    #[serde(skip)]
    security_groups: Vec<String>,
    #[serde(skip)]
    parameter_group: Option<String>,
    #[serde(skip)]
    port: Option<i32>,
    #[serde(skip)]
    deletion_protection: Option<bool>,
    #[serde(skip)]
    iam_auth: Option<bool>,
    /// Serverless v2's capacity range (ACUs), which its `db.serverless`
    /// instances need on the clone too.
    #[serde(skip)]
    serverless_v2: Option<(Option<f64>, Option<f64>)>,
    #[serde(skip)]
    earliest_restorable: Option<DateTime<Utc>>,
    #[serde(skip)]
    latest_restorable: Option<DateTime<Utc>>,
}

/// One instance of a cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    /// `DBInstanceIdentifier`.
    pub id: String,
    /// `IsClusterWriter`.
    pub writer: bool,
    #[serde(skip)]
    promotion_tier: Option<i32>,
}

impl Rds<'_> {
    /// The cluster this provider snapshots.
    fn cluster_id(&self) -> &str {
        self.config.target.id()
    }

    /// Proves the cluster can be snapshotted now and cloned later: it
    /// exists, is available, runs Aurora PostgreSQL, has a writer. Warns
    /// when `database.url` does not name one of its endpoints.
    pub async fn preflight_cluster(&self, app: &ConnInfo) -> Result<Cluster, RdsError> {
        let id = self.cluster_id();
        let found = self
            .describe_cluster(id)
            .await?
            .ok_or_else(|| RdsError::NoCluster { cluster: id.into() })?;
        if found.engine != "aurora-postgresql" {
            return Err(RdsError::NotPostgres {
                kind: "cluster",
                id: id.into(),
                expected: "`aurora-postgresql` (`snapshot.provider: aurora-clone` clones Aurora PostgreSQL clusters)",
                engine: found.engine.clone(),
            });
        }
        if found.status != "available" {
            return Err(RdsError::ClusterNotAvailable {
                cluster: id.into(),
                status: found.status.clone(),
            });
        }
        if !found.members.iter().any(|m| m.writer) {
            return Err(RdsError::NoWriter { cluster: id.into() });
        }
        let endpoints = [&found.endpoint, &found.reader_endpoint];
        let named = app.hosts().iter().any(|h| {
            endpoints
                .iter()
                .any(|e| e.as_deref().is_some_and(|e| h.eq_ignore_ascii_case(e)))
        });
        if !named {
            tracing::warn!(cluster = %id, endpoint = found.endpoint.as_deref().unwrap_or("none"), hosts = %app.hosts().join(","), "`database.url` does not name the cluster's endpoint (a proxy, a custom endpoint or a DNS alias may be in between): make sure it is the database on this cluster, which a rollback replaces");
        }
        Ok(found)
    }

    /// Takes `record.snapshot` of the cluster, waits until it is
    /// available, and returns the time it was taken at.
    pub async fn cluster_snapshot(&self, record: &AuroraClone) -> Result<DateTime<Utc>, RdsError> {
        self.client
            .create_db_cluster_snapshot()
            .db_cluster_identifier(&record.cluster)
            .db_cluster_snapshot_identifier(&record.snapshot)
            .send()
            .await
            .map_err(RdsError::call("CreateDBClusterSnapshot"))?;
        self.wait_snapshot_with(&record.snapshot, || async {
            let (status, progress, _) = self.cluster_snapshot_status(&record.snapshot).await?;
            Ok((status, progress))
        })
        .await?;
        let (_, _, created) = self.cluster_snapshot_status(&record.snapshot).await?;
        created.ok_or_else(|| RdsError::SnapshotNotReady {
            snapshot: record.snapshot.clone(),
            state: "without a creation time".into(),
        })
    }

    /// A cluster snapshot's status, percent done and creation time;
    /// `missing` when RDS has none by that name.
    async fn cluster_snapshot_status(
        &self,
        name: &str,
    ) -> Result<(String, Option<i32>, Option<DateTime<Utc>>), RdsError> {
        match self
            .client
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(name)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_cluster_snapshots()
                .first()
                .map(|s| {
                    (
                        s.status().unwrap_or("unknown").to_owned(),
                        s.percent_progress(),
                        s.snapshot_create_time().and_then(utc),
                    )
                })
                .unwrap_or(("missing".into(), None, None))),
            Err(e) => {
                let e = RdsError::call("DescribeDBClusterSnapshots")(e);
                if e.code() == Some("DBClusterSnapshotNotFoundFault") {
                    Ok(("missing".into(), None, None))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The cluster's manual snapshots whose names snapguard gives, oldest
    /// first.
    pub(super) async fn list_cluster_snapshots(&self) -> Result<Vec<Listed>, RdsError> {
        let cluster = self.cluster_id();
        snapguard_snapshots(cluster, |marker| async move {
            let page = self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_identifier(cluster)
                .snapshot_type("manual")
                .set_marker(marker)
                .send()
                .await
                .map_err(RdsError::call("DescribeDBClusterSnapshots"))?;
            let listed = page
                .db_cluster_snapshots()
                .iter()
                .filter_map(|s| {
                    Some(Listed {
                        id: s.db_cluster_snapshot_identifier()?.to_owned(),
                        instance: cluster.to_owned(),
                        status: s.status().unwrap_or("unknown").to_owned(),
                        created: s.snapshot_create_time().and_then(utc),
                        allocated_gib: s.allocated_storage(),
                    })
                })
                .collect();
            Ok((listed, page.marker().map(str::to_owned)))
        })
        .await
    }

    /// Deletes cluster snapshot `id` (`prune --rds`).
    pub(super) async fn delete_cluster_snapshot(&self, id: &str) -> Result<(), RdsError> {
        self.client
            .delete_db_cluster_snapshot()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map_err(RdsError::call("DeleteDBClusterSnapshot"))?;
        Ok(())
    }

    /// Before the swap: the cluster is there and can be cloned at the
    /// snapshot's time, or nothing is touched.
    pub async fn check_clonable(&self, record: &AuroraClone) -> Result<(), RdsError> {
        let Some(at) = record.restore_to else {
            return Err(RdsError::SnapshotNotReady {
                snapshot: record.snapshot.clone(),
                state: "not recorded as available".into(),
            });
        };
        let cluster = self
            .describe_cluster(&record.cluster)
            .await?
            .ok_or_else(|| RdsError::NoCluster {
                cluster: record.cluster.clone(),
            })?;
        if let Some(earliest) = cluster.earliest_restorable
            && earliest > at
        {
            return Err(RdsError::NotRestorable {
                cluster: record.cluster.clone(),
                at,
                earliest,
                snapshot: record.snapshot.clone(),
            });
        }
        Ok(())
    }

    /// Makes the clone at `record.restore_to` with the cluster's network
    /// and parameter group, and an instance for each of the cluster's,
    /// unless RDS shows them made; waits until all are available.
    pub async fn clone_cluster(&self, record: &AuroraClone) -> Result<(), RdsError> {
        let source = self
            .describe_cluster(&record.cluster)
            .await?
            .ok_or_else(|| RdsError::NoCluster {
                cluster: record.cluster.clone(),
            })?;
        let at = record.restore_to.expect("checked before the swap began");
        // Aurora makes the last few minutes restorable a little late.
        self.wait(
            &format!("`{}` restorable at {at}", record.cluster),
            || async {
                let latest = self
                    .describe_cluster(&record.cluster)
                    .await?
                    .and_then(|c| c.latest_restorable);
                Ok(match latest {
                    Some(latest) if latest >= at => None,
                    Some(latest) => Some(format!("restorable until {latest}")),
                    None => Some("no latest restorable time yet".into()),
                })
            },
        )
        .await?;
        if self.describe_cluster(&record.clone).await?.is_none() {
            tracing::info!(cluster = %record.cluster, clone = %record.clone, at = %at, "cloning the Aurora cluster as it was before the migrations (copy-on-write)");
            self.client
                .restore_db_cluster_to_point_in_time()
                .db_cluster_identifier(&record.clone)
                .source_db_cluster_identifier(&record.cluster)
                .restore_type("copy-on-write")
                .restore_to_time(aws_time(at))
                .set_db_subnet_group_name(source.subnet_group.clone())
                .set_vpc_security_group_ids(
                    (!source.security_groups.is_empty()).then(|| source.security_groups.clone()),
                )
                .set_db_cluster_parameter_group_name(source.parameter_group.clone())
                .set_port(source.port)
                .set_deletion_protection(source.deletion_protection)
                .set_enable_iam_database_authentication(source.iam_auth)
                .set_serverless_v2_scaling_configuration(source.serverless_v2.map(|(min, max)| {
                    ServerlessV2ScalingConfiguration::builder()
                        .set_min_capacity(min)
                        .set_max_capacity(max)
                        .build()
                }))
                .send()
                .await
                .map_err(RdsError::call("RestoreDBClusterToPointInTime"))?;
        }
        self.wait_cluster(&record.clone, &format!("clone `{}`", record.clone))
            .await?;
        let mut instances = Vec::new();
        for (n, member) in source.members.iter().enumerate() {
            let name = record.instance(n + 1);
            if self.describe(&name).await?.is_none() {
                let like = self.describe(&member.id).await?;
                tracing::info!(clone = %record.clone, instance = %name, like = %member.id, "adding an instance to the clone");
                let request = self
                    .client
                    .create_db_instance()
                    .db_instance_identifier(&name)
                    .db_cluster_identifier(&record.clone)
                    .engine(&source.engine)
                    .set_db_instance_class(like.as_ref().and_then(|i| i.class.clone()))
                    .set_db_parameter_group_name(
                        like.as_ref().and_then(|i| i.parameter_group.clone()),
                    )
                    .set_promotion_tier(member.promotion_tier)
                    .set_publicly_accessible(like.as_ref().and_then(|i| i.publicly_accessible));
                match request.send().await {
                    Ok(_) => {}
                    // Another `recover` got there first.
                    Err(e) if e.code() == Some("DBInstanceAlreadyExists") => {}
                    Err(e) => return Err(RdsError::call("CreateDBInstance")(e)),
                }
            }
            instances.push(name);
        }
        for name in &instances {
            self.wait(&format!("instance `{name}` of the clone"), || async {
                Ok(not_yet_available(
                    self.describe(name).await?.map(|i| i.status),
                ))
            })
            .await?;
        }
        Ok(())
    }

    /// Renames the failed cluster aside, unless RDS shows it done or under
    /// way, and waits until the name is free.
    pub async fn rename_cluster_aside(&self, record: &AuroraClone) -> Result<(), RdsError> {
        self.rename_cluster(&record.cluster, &record.aside, record)
            .await
    }

    /// Renames the clone to the cluster's name, unless RDS shows it done
    /// or under way, and waits until it is available under it.
    pub async fn promote_clone(&self, record: &AuroraClone) -> Result<(), RdsError> {
        self.rename_cluster(&record.clone, &record.cluster, record)
            .await
    }

    /// `from` renamed to `to` (`ModifyDBCluster`), as [`Rds::rename`]
    /// decides.
    async fn rename_cluster(
        &self,
        from: &str,
        to: &str,
        record: &AuroraClone,
    ) -> Result<(), RdsError> {
        let lost = || RdsError::ClusterLost {
            cluster: record.cluster.clone(),
            aside: record.aside.clone(),
            clone: record.clone.clone(),
        };
        let status = |id: &str| {
            let id = id.to_owned();
            async move { Ok(self.describe_cluster(&id).await?.map(|c| c.status)) }
        };
        let modify = || async {
            tracing::info!(from, to, "renaming the Aurora cluster");
            self.client
                .modify_db_cluster()
                .db_cluster_identifier(from)
                .new_db_cluster_identifier(to)
                .apply_immediately(true)
                .send()
                .await
                .map(|_| ())
                .map_err(RdsError::call("ModifyDBCluster"))
        };
        self.rename(from, to, status, modify, lost).await
    }

    /// After the swap: waits until `database.url` is served by one of the
    /// clone's instances (`aurora_db_instance_identifier()`), not by the
    /// failed cluster's, which the cluster endpoint's DNS may still lead
    /// to for a while after the rename. A server without that function is
    /// not Aurora (a proxy, or the tests' PostgreSQL): nothing to tell by,
    /// said and passed.
    pub async fn wait_served_by_clone(
        &self,
        app: &ConnInfo,
        record: &AuroraClone,
    ) -> Result<(), RdsError> {
        let (prefix, suffix) = (format!("{}-", record.cluster), format!("-{}", record.short));
        self.wait(
            &format!("`database.url` served by clone `{}`'s instances", record.cluster),
            || async {
                let client = match crate::db::connect(app).await {
                    Ok(client) => client,
                    Err(e) => return Ok(Some(format!("not answering: {}", crate::error::chain(&e)))),
                };
                let aurora = client
                    .query_one("SELECT to_regproc('aurora_db_instance_identifier') IS NOT NULL", &[])
                    .await
                    .map(|row| row.get::<_, bool>(0));
                match aurora {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("`database.url` has no aurora_db_instance_identifier(): it is not Aurora PostgreSQL itself (a proxy?), so whether it leads to the clone cannot be checked");
                        return Ok(None);
                    }
                    Err(e) => return Ok(Some(format!("cannot ask: {e}"))),
                }
                Ok(match client.query_one("SELECT aurora_db_instance_identifier()::text", &[]).await {
                    Ok(row) => {
                        let id: String = row.get(0);
                        (!(id.starts_with(&prefix) && id.ends_with(&suffix)))
                            .then(|| format!("served by instance `{id}`, not the clone's"))
                    }
                    Err(e) => Some(format!("cannot ask: {e}")),
                })
            },
        )
        .await
    }

    /// Waits until cluster `id` is available.
    async fn wait_cluster(&self, id: &str, what: &str) -> Result<(), RdsError> {
        self.wait(what, || async {
            Ok(not_yet_available(
                self.describe_cluster(id).await?.map(|c| c.status),
            ))
        })
        .await
    }

    /// The cluster named `id`, if RDS has one.
    async fn describe_cluster(&self, id: &str) -> Result<Option<Cluster>, RdsError> {
        let out = match self
            .client
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("DBClusterNotFoundFault") => return Ok(None),
            Err(e) => return Err(RdsError::call("DescribeDBClusters")(e)),
        };
        Ok(out.db_clusters().first().map(|c| {
            let mut members: Vec<Member> = c
                .db_cluster_members()
                .iter()
                .filter_map(|m| {
                    Some(Member {
                        id: m.db_instance_identifier()?.to_owned(),
                        writer: m.is_cluster_writer().unwrap_or(false),
                        promotion_tier: m.promotion_tier(),
                    })
                })
                .collect();
            // The first instance made in a cluster is its writer.
            members.sort_by_key(|m| !m.writer);
            Cluster {
                id: c.db_cluster_identifier().unwrap_or(id).to_owned(),
                status: c.status().unwrap_or("unknown").to_owned(),
                engine: c.engine().unwrap_or_default().to_owned(),
                version: c.engine_version().map(str::to_owned),
                endpoint: c.endpoint().map(str::to_owned),
                members,
                reader_endpoint: c.reader_endpoint().map(str::to_owned),
                subnet_group: c.db_subnet_group().map(str::to_owned),
                security_groups: c
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                    .collect(),
                parameter_group: c.db_cluster_parameter_group().map(str::to_owned),
                port: c.port(),
                deletion_protection: c.deletion_protection(),
                iam_auth: c.iam_database_authentication_enabled(),
                serverless_v2: c
                    .serverless_v2_scaling_configuration()
                    .map(|s| (s.min_capacity(), s.max_capacity())),
                earliest_restorable: c.earliest_restorable_time().and_then(utc),
                latest_restorable: c.latest_restorable_time().and_then(utc),
            }
        }))
    }
}

/// An RDS time as chrono's.
fn utc(t: &AwsTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// A chrono time as RDS's.
fn aws_time(t: DateTime<Utc>) -> AwsTime {
    AwsTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rds_identifiers_unique_to_the_deploy() {
        let r = AuroraClone::named("prod-db", "20261203t140342z_3fa9");
        assert_eq!(r.snapshot, "snapguard-prod-db-20261203t140342z-3fa9");
        assert_eq!(r.clone, "prod-db-clone-20261203t140342z-3fa9");
        assert_eq!(r.aside, "prod-db-failed-20261203t140342z-3fa9");
        assert_eq!(r.instance(2), "prod-db-2-20261203t140342z-3fa9");
        // The longest cluster the config takes still fits RDS's 63, with
        // Aurora's 15 instances at most.
        let longest = AuroraClone::named(&"a".repeat(34), "20261203t140342z_3fa9");
        for name in [&longest.clone, &longest.aside, &longest.instance(15)] {
            assert!(name.len() <= 63, "{name}");
        }
    }

    #[test]
    fn times_survive_the_round_trip_to_rds() {
        let at = DateTime::from_timestamp(1_796_000_000, 123_456_000).unwrap();
        assert_eq!(utc(&aws_time(at)), Some(at));
    }
}
