//! `notify:`: the outcome of every deploy and recovery, sent once to each
//! configured webhook, whatever it was: a Slack-compatible JSON body (its
//! `text` is what a chat shows) with the details under `snapguard` for
//! anything that reads them. A webhook that fails is retried, then logged:
//! it never changes the command's outcome or exit code.

use crate::config::maintenance::HttpCall;
use crate::http::{self, HttpClient};
use crate::report::Report;

/// Attempts per webhook.
const ATTEMPTS: u32 = 3;

/// The body sent for `report`, from `command` (`deploy`, `recover`).
pub fn payload(command: &str, report: &Report) -> serde_json::Value {
    let outcome = report.outcome.as_str();
    let release = report
        .release
        .as_deref()
        .map(|r| format!(" (release {r})"))
        .unwrap_or_default();
    let mut text = format!(
        "snapguard {command} of `{}`{release}: {}",
        report.database,
        outcome.replace('_', " ")
    );
    if let Some(f) = &report.failure {
        text.push_str(&format!(" — failed at {}: {}", f.step, f.message));
    }
    if let Some(first) = report.next_steps.first() {
        text.push_str(&format!(" — next: `{first}`"));
    }
    serde_json::json!({
        "text": text,
        "snapguard": {
            "command": command,
            "outcome": outcome,
            "database": report.database,
            "deploy_id": report.deploy_id,
            "release": report.release,
            "previous_release": report.previous_release,
            "snapshot_id": report.snapshot.as_ref().map(|s| s.id.clone()),
            "failed_step": report.failure.as_ref().map(|f| f.step.clone()),
            "failure": report.failure.as_ref().map(|f| f.message.clone()),
            "next_commands": report.next_steps,
            "downtime_seconds": report.downtime_seconds,
        }
    })
}

/// Sends `report` to every webhook in `webhooks`, each with the retries a
/// maintenance webhook gets.
pub async fn send(webhooks: &[HttpCall], command: &str, report: &Report) {
    if webhooks.is_empty() {
        return;
    }
    let body = payload(command, report).to_string();
    let client = HttpClient::new();
    for hook in webhooks {
        let mut hook = hook.clone();
        hook.request.body = Some(body.clone());
        if !hook
            .request
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            hook.request.headers.push((
                "content-type".into(),
                crate::db::Secret::new("application/json"),
            ));
        }
        let target = http::redact(hook.request.url.expose());
        match crate::maintenance::call(&hook, ATTEMPTS - 1, &client).await {
            Ok(()) => tracing::info!(webhook = %target, "notified"),
            Err(e) => {
                tracing::warn!(webhook = %target, error = %crate::error::chain(&*e), "notification failed; the outcome stands")
            }
        }
    }
}
