//! The registry of snapguard's sessions: a sequence, `snapguard.sessions`,
//! from which every snapguard session to a database that has one takes a
//! number right after connecting (and the deploy one more for each
//! `pg_dump` it starts there).
//!
//! The write guard compares the server's count of sessions since the
//! snapshot with the sessions that are snapguard's. A deploy counts its own
//! in memory, but `recover` comes after a dead runner, whose last journal
//! write cannot know the sessions it opened afterwards, nor those another
//! snapguard command (a `migrate status` by the operator) opened before
//! `recover` ran: counted as someone else's, they made `recover` refuse.
//! A sequence counts them all, whoever opened them and however they ended,
//! and survives a `kill -9`: `nextval` is not undone by anything.
//!
//! Registering is best effort and never fails a connection: a role without
//! the privilege, a read-only session or a standby takes no number, and the
//! guard then finds a session it cannot explain and refuses (the safe side).
//! Every number stands for a session that connected, so the count errs only
//! by too few.

use tokio_postgres::Client;

/// Creates the sequence when missing. Best effort: a deploy role that was
/// granted `snapguard.deploys` but may not create in the schema does
/// without (`recover` then counts from the journal).
pub async fn create(app: &Client) {
    let exists = app
        .query_one("SELECT to_regclass('snapguard.sessions') IS NOT NULL", &[])
        .await
        .is_ok_and(|row| row.get::<_, bool>(0));
    if exists {
        return;
    }
    if let Err(e) = app
        .batch_execute("CREATE SEQUENCE snapguard.sessions")
        .await
    {
        tracing::debug!(error = %e, "cannot create snapguard.sessions; recover counts sessions from the journal");
    }
}

/// Takes a number for the session `client` holds, where the database has
/// the sequence and the session may take one (so that this never puts an
/// error on the server's log). Also called once more, through one of its
/// own sessions, for a session another program (`pg_dump`) opened to the
/// same database.
pub async fn register(client: &Client) {
    let taken = client
        .simple_query(
            "SELECT nextval(c) FROM to_regclass('snapguard.sessions') c \
             WHERE c IS NOT NULL AND NOT pg_is_in_recovery() \
               AND current_setting('transaction_read_only') = 'off' \
               AND has_sequence_privilege(c, 'UPDATE')",
        )
        .await;
    if let Err(e) = taken {
        tracing::debug!(error = %e, "this session is not registered in snapguard.sessions");
    }
}

/// The number the session `client` holds took last: every session that
/// registered before it has a smaller one. `None` when it took none.
pub async fn own_number(client: &Client) -> Option<i64> {
    client
        .query_one("SELECT currval('snapguard.sessions')", &[])
        .await
        .ok()
        .map(|row| row.get(0))
}
