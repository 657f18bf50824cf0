//! What `snapguard plan` prints once the deploy's preflight passed: the
//! steps `deploy` would run, as text or JSON.

use super::Found;
use super::preflight::ProviderReady;
use crate::config::{Config, Offsite, Provider};
use crate::progress::format_bytes;
use crate::store::{ObjectStore, Store};

/// The plan as JSON.
pub fn json(found: &Found, config: &Config, store: &Store, database: &str) -> serde_json::Value {
    serde_json::json!({
        "database": database,
        "server_version": found.server_version,
        "database_bytes": found.database_bytes,
        "store": store.uri(""),
        "nothing_to_deploy": found.nothing_to_deploy,
        "pending": found.pending.iter().map(|p| serde_json::json!({"version": p.version, "path": p.path, "transaction": p.transaction, "batched": p.batched})).collect::<Vec<_>>(),
        "external_migrator": found.external_command,
        "external_pending": found.external_pending,
        "transaction": config.migrations.transaction.as_config(),
        "checks": { "before": config.checks.before.len(), "after": config.checks.after.len(), "compare": config.checks.compare.len() },
        "maintenance": config.maintenance.iter().map(|s| s.describe()).collect::<Vec<_>>(),
        "local_clone": local_clone(found),
        "clone_method": found.local_clone.as_ref().ok().map(|m| m.as_str()),
        "clone_method_detail": found.local_clone.as_ref().ok().map(ToString::to_string),
        "tools": found.tools,
        "offsite": offsite(found, config).as_str(),
        "provider": provider_json(found, config),
        "release": found.release,
        "release_command": config.release.command,
        "previous_release": found.previous_release,
        "lint": found.lint,
    })
}

/// The plan as numbered steps, for a terminal.
pub fn text(found: &Found, config: &Config, store: &Store, database: &str) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "deploy plan for `{database}` (PostgreSQL {}, {}): preflight passed",
        found.server_version,
        format_bytes(found.database_bytes)
    ));
    line(format!("  client programs: {}", found.tools.join(", ")));
    if found.nothing_to_deploy {
        line(format!("  {}", found.nothing_reason()));
        return out;
    }
    if config.maintenance.is_empty() {
        line("  1. maintenance on: no switch configured (the application keeps serving during the deploy; `maintenance:` in the config adds one)".into());
    } else {
        line("  1. maintenance on:".into());
        for s in &config.maintenance {
            line(format!("       {}", s.describe()));
        }
    }
    line(match (&config.snapshot.provider, &found.provider) {
        (Provider::Rds(r), Some(ProviderReady::Rds(instance))) => format!(
            "  2. RDS snapshot of instance `{}` ({}, {}; minutes on AWS, more for a large or busy instance, waited on up to {:?}); a rollback renames the WHOLE instance aside and restores the snapshot under its name",
            instance.id,
            instance.engine,
            instance.class.as_deref().unwrap_or("unknown class"),
            r.wait
        ),
        (Provider::Rds(r), Some(ProviderReady::Aurora(cluster))) => format!(
            "  2. Aurora snapshot of cluster `{}` ({} {}, {} instance(s); minutes on AWS, waited on up to {:?}); a rollback clones the WHOLE cluster as it was (copy-on-write) and swaps the clone in under its name",
            cluster.id,
            cluster.engine,
            cluster.version.as_deref().unwrap_or(""),
            cluster.members.len(),
            r.wait
        ),
        (Provider::Pgbackrest(p), Some(ProviderReady::Pgbackrest(ready))) => format!(
            "  2. pgBackRest restore point in stanza `{}` (about a second: the point, a WAL switch, `pgbackrest check`); a rollback restores backup {} (finished {} ago) and replays the WAL since, for the WHOLE cluster: {}",
            p.stanza,
            ready.backup,
            age(ready.backup_stopped),
            ready.databases.join(", ")
        ),
        _ => match offsite(found, config) {
            Offsite::BeforeMigrate => format!(
                "  2. snapshot to {}; local clone: {}",
                store.uri("snapshots/"),
                local_clone(found)
            ),
            policy => format!(
                "  2. local clone by {}; the snapshot to {} is dumped from it beside steps 3–6 (offsite: {})",
                found
                    .local_clone
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                store.uri("snapshots/"),
                policy.as_str()
            ),
        },
    });
    if !matches!(config.snapshot.provider, Provider::PgDump) && config.snapshot.store_copy {
        line(format!(
            "     then a pg_dump copy to {} (snapshot.offsite: before-migrate; in the window)",
            store.uri("snapshots/")
        ));
    }
    match &found.external_command {
        Some(c) => line(format!(
            "  3. migrate with the external migrator `{c}`{}",
            match found.external_pending {
                Some(true) => " (its pending_command: something to apply)",
                Some(false) => " (its pending_command: nothing to apply)",
                None => "",
            }
        )),
        None => {
            line(format!(
                "  3. migrate (transaction: {}): {} pending",
                config.migrations.transaction.as_config(),
                found.pending.len()
            ));
            for p in &found.pending {
                let mut row = format!("       {}", p.path);
                if !p.transaction {
                    row.push_str("  [no transaction]");
                }
                if p.batched {
                    row.push_str("  [batched]");
                }
                line(row);
            }
            // Lint errors stop preflight; what remains is shown here.
            for f in &found.lint.findings {
                let context = f.table_context();
                let allowed = f
                    .allowed
                    .as_ref()
                    .map(|r| format!(" [allowed: {r}]"))
                    .unwrap_or_default();
                line(format!(
                    "       lint {} {} at {}:{}: {}{context}{allowed}",
                    f.level.as_str(),
                    f.rule,
                    f.file,
                    f.line,
                    f.message
                ));
            }
        }
    }
    line(format!(
        "  4. verify: {} after, {} compare check(s) and the built-in ones",
        config.checks.after.len(),
        config.checks.compare.len()
    ));
    let previous = found.previous_release.as_deref().unwrap_or("none recorded");
    line(match (&config.release.command, &found.release) {
        (Some(c), Some(r)) => format!("  5. release {r} with `{c}` (previous: {previous})"),
        (Some(c), None) => format!("  5. release with `{c}`, no release id (previous: {previous})"),
        (None, Some(r)) => format!(
            "  5. release {r}: recorded only, no `release.command` runs (previous: {previous})"
        ),
        (None, None) => format!("  5. release: no command (previous: {previous})"),
    });
    if let Some(h) = &config.release.health {
        line(format!(
            "  6. health: {}",
            crate::http::redact(h.url.expose())
        ));
    }
    line(match offsite(found, config) {
        Offsite::BeforeMaintenanceOff => "  then, once the snapshot is committed, maintenance off. `snapguard rehearse` measures how long this takes.".into(),
        Offsite::After => "  then maintenance off, and the deploy ends once the snapshot is committed. `snapguard rehearse` measures how long this takes.".into(),
        Offsite::BeforeMigrate => "  then maintenance off. `snapguard rehearse` measures how long this takes.".into(),
    });
    out
}

/// `snapshot.offsite` as the deploy would run it: without a clone, the
/// snapshot is taken before the migrations whatever the setting.
fn offsite(found: &Found, config: &Config) -> Offsite {
    config.snapshot.offsite.effective(found.local_clone.is_ok())
}

fn local_clone(found: &Found) -> String {
    match &found.local_clone {
        Ok(_) => "yes".to_owned(),
        Err(why) => format!("no: {why}"),
    }
}

/// `snapshot.provider` and what preflight found of it.
fn provider_json(found: &Found, config: &Config) -> serde_json::Value {
    match (&config.snapshot.provider, &found.provider) {
        (Provider::Rds(r), Some(ProviderReady::Rds(instance))) => serde_json::json!({
            "kind": "rds",
            "instance": instance,
            "region": r.region,
            "wait_seconds": r.wait.as_secs(),
        }),
        (Provider::Rds(r), Some(ProviderReady::Aurora(cluster))) => serde_json::json!({
            "kind": "aurora-clone",
            "cluster": cluster,
            "region": r.region,
            "wait_seconds": r.wait.as_secs(),
        }),
        (Provider::Pgbackrest(p), Some(ProviderReady::Pgbackrest(ready))) => serde_json::json!({
            "kind": "pgbackrest",
            "stanza": p.stanza,
            "backup": ready.backup,
            "backup_stopped": ready.backup_stopped,
            "cluster_databases": ready.databases,
        }),
        _ => serde_json::json!({ "kind": "pg_dump" }),
    }
}

/// How long ago `unix_seconds` was, roughly: `3h 20m`, `12m`, `40s`.
fn age(unix_seconds: i64) -> String {
    let secs = (chrono::Utc::now().timestamp() - unix_seconds).max(0);
    match secs {
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
