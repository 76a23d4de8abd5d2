//! The notifications database: in-app notifications, the claims that make each
//! event's email go out once, and the masked copies the admin outbox shows.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{self, Value as Json};
use kirana_sdk::sql;
use kirana_sdk::CapError;

/// Idempotent schema (run at every load).
pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(&[
        "CREATE TABLE IF NOT EXISTS notifications (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            data TEXT NOT NULL,
            is_read BOOLEAN NOT NULL,
            created_at TEXT NOT NULL,
            dedupe_key TEXT NOT NULL UNIQUE
        )",
        "CREATE INDEX IF NOT EXISTS notifications_user_created \
         ON notifications (user_id, created_at)",
        "CREATE INDEX IF NOT EXISTS notifications_user_unread \
         ON notifications (user_id, is_read)",
        "CREATE TABLE IF NOT EXISTS sent_messages (
            dedupe_key TEXT PRIMARY KEY,
            message_id TEXT,
            created_at TEXT NOT NULL
        )",
        // What the admin outbox may show of each message this plugin sent, keyed by the
        // SHA-256 of the message as recorded (see `messages::view_digest`). NULL masked
        // columns: the message carries no secret and is shown as sent.
        "CREATE TABLE IF NOT EXISTS outbox_views (
            digest TEXT PRIMARY KEY,
            masked_subject TEXT,
            masked_body TEXT,
            created_at TEXT NOT NULL
        )",
    ])
}

/// An in-app notification as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: Json,
    pub read: bool,
    pub created_at: String,
    #[serde(skip)]
    pub user_id: String,
}

/// By hand: `data` is JSON text parsed into a value.
impl FromRow for Notification {
    fn from_row(r: &Row<'_>) -> Result<Self, CapError> {
        let data: String = r.get("data")?;
        Ok(Notification {
            id: r.get("id")?,
            kind: r.get("kind")?,
            title: r.get("title")?,
            body: r.get("body")?,
            data: serde_json::from_str(&data).unwrap_or(Json::Null),
            read: r.get("is_read")?,
            created_at: r.get("created_at")?,
            user_id: r.get("user_id")?,
        })
    }
}

const COLUMNS: &str = "id, user_id, kind, title, body, data, is_read, created_at";

/// A notification ready to be stored, with its dedupe key.
pub struct NewNotification {
    pub notification: Notification,
    pub dedupe_key: String,
}

/// Stores `notes` in one transaction; a note whose dedupe key exists is skipped.
/// Returns the ones created now (a redelivered event returns none).
pub fn insert_all(notes: Vec<NewNotification>) -> Result<Vec<Notification>, CapError> {
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let tx = sql::begin()?;
    let mut created = Vec::new();
    for n in notes {
        let x = &n.notification;
        let rows = tx.execute(
            &format!(
                "INSERT INTO notifications ({COLUMNS}, dedupe_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedupe_key) DO NOTHING"
            ),
            &params![
                x.id,
                x.user_id,
                x.kind,
                x.title,
                x.body,
                x.data.to_string(),
                x.read,
                x.created_at,
                n.dedupe_key
            ],
        )?;
        if rows == 1 {
            created.push(n.notification);
        }
    }
    tx.commit()?;
    Ok(created)
}

/// A page of a user's notifications, newest first, and the total matching.
pub fn list(
    user_id: &str,
    unread_only: bool,
    paging: Paging,
) -> Result<(Vec<Notification>, i64), CapError> {
    // `$2 = FALSE OR is_read = FALSE`: one statement for both filters, typed on PostgreSQL.
    let filter = "user_id = $1 AND ($2 = FALSE OR is_read = FALSE)";
    let total: i64 = sql::query(
        &format!("SELECT COUNT(*) FROM notifications WHERE {filter}"),
        &params![user_id, unread_only],
    )?
    .scalar()?;
    let items = sql::query_as::<Notification>(
        &format!(
            "SELECT {COLUMNS} FROM notifications WHERE {filter} \
             ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        ),
        &params![user_id, unread_only, paging.limit(), paging.offset()],
    )?;
    Ok((items, total))
}

/// How many of the user's notifications are unread.
pub fn unread_count(user_id: &str) -> Result<i64, CapError> {
    sql::query(
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND is_read = $2",
        &params![user_id, false],
    )?
    .scalar()
}

/// Marks one of the user's notifications read; false when the user has no such one.
pub fn mark_read(user_id: &str, id: &str) -> Result<bool, CapError> {
    let rows = sql::execute(
        "UPDATE notifications SET is_read = $1 WHERE id = $2 AND user_id = $3",
        &params![true, id, user_id],
    )?;
    Ok(rows > 0)
}

/// Marks every notification of the user read.
pub fn mark_all_read(user_id: &str) -> Result<u64, CapError> {
    sql::execute(
        "UPDATE notifications SET is_read = $1 WHERE user_id = $2 AND is_read = $3",
        &params![true, user_id, false],
    )
}

/// Claims `key` for one message; false when it was claimed (sent) before.
pub fn claim_message(key: &str) -> Result<bool, CapError> {
    let rows = sql::execute(
        "INSERT INTO sent_messages (dedupe_key, message_id, created_at) VALUES ($1, NULL, $2) \
         ON CONFLICT (dedupe_key) DO NOTHING",
        &params![key, now_rfc3339()],
    )?;
    Ok(rows == 1)
}

/// Records the outbox id of a claimed message.
pub fn message_sent(key: &str, message_id: &str) -> Result<(), CapError> {
    sql::execute(
        "UPDATE sent_messages SET message_id = $1 WHERE dedupe_key = $2",
        &params![message_id, key],
    )?;
    Ok(())
}

/// Gives a claim back after a failed send, so the retry sends.
pub fn release_message(key: &str) -> Result<(), CapError> {
    sql::execute(
        "DELETE FROM sent_messages WHERE dedupe_key = $1",
        &params![key],
    )?;
    Ok(())
}

/// What the admin may see of one sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxView {
    /// `None`: the message has no secret; show it as sent.
    pub masked_subject: Option<String>,
    pub masked_body: Option<String>,
}

/// Records what the admin may see of the message whose digest is `digest`; called
/// before the message is handed to the host, so it is never listed without one.
pub fn remember_view(digest: &str, view: &OutboxView) -> Result<(), CapError> {
    sql::execute(
        "INSERT INTO outbox_views (digest, masked_subject, masked_body, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
        &params![digest, view.masked_subject, view.masked_body, now_rfc3339()],
    )?;
    Ok(())
}

/// The recorded views of the messages with these digests (at most one page's worth).
pub fn views(
    digests: &[String],
) -> Result<std::collections::HashMap<String, OutboxView>, CapError> {
    let mut found = std::collections::HashMap::new();
    if digests.is_empty() {
        return Ok(found);
    }
    let placeholders: Vec<String> = (1..=digests.len()).map(|i| format!("${i}")).collect();
    let args: Vec<sql::Value> = digests.iter().map(sql::ToValue::to_value).collect();
    let rows = sql::query(
        &format!(
            "SELECT digest, masked_subject, masked_body FROM outbox_views \
             WHERE digest IN ({})",
            placeholders.join(", ")
        ),
        &args,
    )?;
    for r in rows.iter() {
        found.insert(
            r.get("digest")?,
            OutboxView {
                masked_subject: r.get("masked_subject")?,
                masked_body: r.get("masked_body")?,
            },
        );
    }
    Ok(found)
}
