//! `postgres_fence`: locks the application's roles out of the database for
//! the deploy, so nothing can write after the snapshot.
//!
//! Raising it records each role's login attribute, sets `NOLOGIN` (new
//! connections are refused), ends the roles' sessions on the application
//! database and waits until none is left. Lowering it puts the recorded
//! attribute back exactly. The recorded state lives in the deploy journal,
//! so `recover` can lower a fence a killed deploy left up.
//!
//! `NOLOGIN` is a cluster-wide attribute: while the fence is up the roles
//! cannot log in to any database of the server.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::db::privileges::{self, Capabilities};
use crate::db::{self, DbError, quote_ident};

/// A role's attributes as found before the fence went up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleState {
    /// The role.
    pub name: String,
    /// `rolcanlogin` before the fence.
    pub can_login: bool,
}

/// A session of a fenced role that would not go away.
#[derive(Debug, Clone)]
pub struct Lingering {
    /// Its process id.
    pub pid: i32,
    /// Its role.
    pub user: String,
    /// Its `application_name`.
    pub application: String,
    /// The last error from `pg_terminate_backend`, if it failed.
    pub error: Option<String>,
}

/// The fence could not be checked, raised or lowered.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// A configured role does not exist.
    #[error("role `{0}` (maintenance.postgres_fence.roles) does not exist on the server")]
    NoSuchRole(String),
    /// snapguard connects as one of the roles it would lock out.
    #[error(
        "snapguard connects as `{0}`, which the fence would lock out; connect as a separate deploy role"
    )]
    FencesItself(String),
    /// The connecting role may not change the fenced roles.
    #[error(
        "`{user}` may not change role `{role}`: the fence needs a superuser, or CREATEROLE for roles that are not superusers"
    )]
    NotAllowed {
        /// The connecting role.
        user: String,
        /// The role it would change.
        role: String,
    },
    /// The connecting role lacks what raising and lowering the fence needs.
    #[error("`{user}` cannot fence {}: it lacks {}", roles.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", "), privileges::describe(missing))]
    Missing {
        /// The connecting role.
        user: String,
        /// The roles to fence.
        roles: Vec<String>,
        /// Each missing capability with its grant.
        missing: Vec<privileges::Missing>,
    },
    /// Sessions were still connected when the wait ran out.
    #[error("the fence did not clear within {wait:?}: {} session(s) of the fenced roles are still connected to `{database}` ({})", lingering.len(), describe(lingering))]
    NotClear {
        /// The application database.
        database: String,
        /// `maintenance.postgres_fence.wait`.
        wait: Duration,
        /// What is still connected.
        lingering: Vec<Lingering>,
    },
    /// A statement failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn describe(lingering: &[Lingering]) -> String {
    lingering
        .iter()
        .map(|l| {
            let mut s = format!("pid {} as `{}`", l.pid, l.user);
            if !l.application.is_empty() {
                s.push_str(&format!(" ({})", l.application));
            }
            if let Some(e) = &l.error {
                s.push_str(&format!(": {e}"));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks, changing nothing, that the roles exist and that the connected
/// role may fence them.
pub async fn preflight(client: &Client, roles: &[String]) -> Result<(), FenceError> {
    let major = db::server_version(client).await?.major();
    let here: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(DbError::query("reading the connected database"))?
        .get(0);
    let me = Capabilities::read(client, &here, major).await?;
    for role in roles {
        if *role == me.role {
            return Err(FenceError::FencesItself(me.role));
        }
        let row = client
            .query_opt("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[role])
            .await
            .map_err(DbError::query(format!("reading role `{role}`")))?
            .ok_or_else(|| FenceError::NoSuchRole(role.clone()))?;
        let target_super: bool = row.get(0);
        if target_super && !me.superuser {
            return Err(FenceError::NotAllowed {
                user: me.role.clone(),
                role: role.clone(),
            });
        }
    }
    let admin_on = privileges::admin_option_on(client, roles).await?;
    let missing = me.missing_for_fence(&admin_on);
    if !missing.is_empty() {
        return Err(FenceError::Missing {
            user: me.role,
            roles: roles.to_vec(),
            missing,
        });
    }
    Ok(())
}

/// The roles' current attributes, to be recorded before the fence goes up.
pub async fn read(client: &Client, roles: &[String]) -> Result<Vec<RoleState>, FenceError> {
    let mut out = Vec::new();
    for role in roles {
        let row = client
            .query_opt(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                &[role],
            )
            .await
            .map_err(DbError::query(format!("reading role `{role}`")))?
            .ok_or_else(|| FenceError::NoSuchRole(role.clone()))?;
        out.push(RoleState {
            name: role.clone(),
            can_login: row.get(0),
        });
    }
    Ok(out)
}

/// Forbids the roles to log in, ends their sessions on `database`, and
/// waits until none is left or `wait` runs out.
pub async fn raise(
    client: &Client,
    states: &[RoleState],
    database: &str,
    wait: Duration,
) -> Result<(), FenceError> {
    for s in states {
        set_login(client, &s.name, false).await?;
    }
    let names: Vec<String> = states.iter().map(|s| s.name.clone()).collect();
    let deadline = Instant::now() + wait;
    let mut errors: std::collections::HashMap<i32, String> = Default::default();
    loop {
        let rows = client
            .query(
                "SELECT pid, usename::text, coalesce(application_name, '') FROM pg_stat_activity \
                 WHERE datname = $1 AND usename = ANY($2) AND pid <> pg_backend_pid() ORDER BY pid",
                &[&database, &names],
            )
            .await
            .map_err(DbError::query("listing the fenced roles' sessions"))?;
        if rows.is_empty() {
            tracing::info!(roles = %names.join(", "), database, "fence up: the roles cannot log in and have no sessions");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(FenceError::NotClear {
                database: database.to_owned(),
                wait,
                lingering: rows
                    .iter()
                    .map(|r| {
                        let pid: i32 = r.get(0);
                        Lingering {
                            pid,
                            user: r.get(1),
                            application: r.get(2),
                            error: errors.get(&pid).cloned(),
                        }
                    })
                    .collect(),
            });
        }
        for r in &rows {
            let pid: i32 = r.get(0);
            if let Err(e) = client
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .await
            {
                let message = e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned());
                errors.insert(pid, message);
            }
        }
        tracing::info!(
            sessions = rows.len(),
            database,
            "fence: ending the application's sessions"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Puts each role's login attribute back as recorded.
pub async fn lower(client: &Client, states: &[RoleState]) -> Result<(), FenceError> {
    for s in states {
        set_login(client, &s.name, s.can_login).await?;
    }
    tracing::info!(roles = %states.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "), "fence down: role attributes restored");
    Ok(())
}

/// What no longer holds about a raised fence: a role that can log in
/// again, or a session of a fenced role.
pub async fn breaches(
    client: &Client,
    states: &[RoleState],
    database: &str,
) -> Result<Vec<String>, DbError> {
    let mut out = Vec::new();
    for s in states {
        let row = client
            .query_opt(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                &[&s.name],
            )
            .await
            .map_err(DbError::query(format!("reading role `{}`", s.name)))?;
        if row.is_some_and(|r| r.get::<_, bool>(0)) {
            out.push(format!(
                "the fence on role `{}` was lifted: it can log in again",
                s.name
            ));
        }
    }
    let names: Vec<String> = states.iter().map(|s| s.name.clone()).collect();
    let rows = client
        .query(
            "SELECT pid, usename::text FROM pg_stat_activity WHERE datname = $1 AND usename = ANY($2)",
            &[&database, &names],
        )
        .await
        .map_err(DbError::query("listing the fenced roles' sessions"))?;
    for r in rows {
        let (pid, user): (i32, String) = (r.get(0), r.get(1));
        out.push(format!(
            "fenced role `{user}` has a session on `{database}` (pid {pid})"
        ));
    }
    Ok(out)
}

async fn set_login(client: &Client, role: &str, login: bool) -> Result<(), DbError> {
    let attr = if login { "LOGIN" } else { "NOLOGIN" };
    client
        .batch_execute(&format!("ALTER ROLE {} {attr}", quote_ident(role)))
        .await
        .map_err(DbError::query(format!("ALTER ROLE `{role}` {attr}")))
}
