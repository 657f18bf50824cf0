//! Flyway's `flyway_schema_history` (its PostgreSQL `createMetaDataTable`
//! script): one row per run, ordered by `installed_rank`. Versioned rows
//! carry the version with dots; repeatable rows have none and are told apart
//! by `script`, the latest run of each counting; a `BASELINE` row stands for
//! everything at or below it; `success = false` is a failed migration that
//! `flyway repair` must clear. Flyway stops when an applied SQL migration's
//! file is gone, and so does snapguard.

use tokio_postgres::GenericClient;

use super::{NativeError, NativeRow, Tool};
use crate::db::DbError;
use crate::migrate::plan::AppliedRow;
use crate::migrate::source::Migration;

pub(super) const TABLE: &str = "flyway_schema_history";

pub(super) const COLUMNS: &[&str] = &[
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
    "installed_by",
    "installed_on",
    "execution_time",
    "success",
];

pub(super) const CREATE: &str = r#"
CREATE TABLE IF NOT EXISTS flyway_schema_history (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL,
    CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank")
);
CREATE INDEX IF NOT EXISTS "flyway_schema_history_s_idx" ON flyway_schema_history ("success")"#;

pub(super) async fn read(client: &impl GenericClient) -> Result<Vec<NativeRow>, NativeError> {
    let rows = client
        .query(
            "SELECT version, description, type, script, checksum, success, \
             to_char(installed_on, 'YYYY-MM-DD HH24:MI:SS'), execution_time \
             FROM flyway_schema_history ORDER BY installed_rank",
            &[],
        )
        .await
        .map_err(DbError::query("reading flyway_schema_history"))?;
    let mut out: Vec<NativeRow> = Vec::new();
    for r in rows {
        let version: Option<String> = r.get(0);
        let kind: String = r.get(2);
        let script: String = r.get(3);
        if !r.get::<_, bool>(5) {
            return Err(NativeError::Failed {
                tool: Tool::Flyway,
                table: TABLE,
                version: version.unwrap_or(script),
                state: "failed (success = false)",
                remedy: "Flyway refuses to migrate until it is resolved: check what the migration changed, repair the database by hand, then run `flyway repair`",
            });
        }
        if kind == "SCHEMA" {
            continue;
        }
        let key = match &version {
            Some(v) => v.clone(),
            None => format!("R__{}", repeatable_name(&script)),
        };
        // An undone or deleted version no longer counts; a repeatable's
        // latest run replaces the earlier ones.
        out.retain(|n| n.row.version != key);
        let row_kind = match (kind.as_str(), &version) {
            (k, _) if k.starts_with("UNDO") || k == "DELETE" => continue,
            ("BASELINE", _) => "baseline",
            (_, None) => "repeatable",
            (_, Some(_)) => "versioned",
        };
        out.push(NativeRow {
            row: AppliedRow {
                version: key,
                name: r.get(1),
                checksum: r
                    .get::<_, Option<i32>>(4)
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                kind: row_kind.into(),
                applied_at: r.get(6),
                duration_ms: r.get::<_, i32>(7).into(),
                release_id: None,
                table: TABLE,
            },
            // Java-based and other non-SQL migrations have no file here.
            needs_file: kind == "SQL" && row_kind != "baseline",
        });
    }
    Ok(out)
}

/// `R__person_view.sql` (or `sub/R__person_view.sql`) → `person_view`.
fn repeatable_name(script: &str) -> &str {
    let file = script.rsplit(['/', '\\']).next().unwrap_or(script);
    file.strip_prefix("R__")
        .and_then(|f| f.strip_suffix(".sql"))
        .unwrap_or(file)
}

pub(super) async fn record(
    client: &impl GenericClient,
    m: &Migration,
    seconds: f64,
) -> Result<(), tokio_postgres::Error> {
    // Flyway writes `1_1` in a file name as `1.1`, and the title's `_` as spaces.
    let version = m.version.as_ref().map(|v| v.as_str().replace('_', "."));
    let description: String = m.name.replace('_', " ").chars().take(200).collect();
    let script = m
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let checksum: Option<i32> = m.native_checksum.as_deref().and_then(|c| c.parse().ok());
    let millis = (seconds * 1000.0) as i32;
    client
        .execute(
            "INSERT INTO flyway_schema_history \
             (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) \
             SELECT coalesce(max(installed_rank), 0) + 1, $1, $2, 'SQL', $3, $4, left(current_user, 100), $5, true \
             FROM flyway_schema_history",
            &[&version, &description, &script, &checksum, &millis],
        )
        .await?;
    Ok(())
}
