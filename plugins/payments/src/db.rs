//! The payments database: schema, the payment as stored and read back.

use kirana_sdk::prelude::*;
use kirana_sdk::sql;
use kirana_sdk::CapError;

use crate::rules::Status;

/// Idempotent schema (run at every load).
pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(&[
        // One row per intent; `provider_payment_id` is set by a capture (or a failure).
        "CREATE TABLE IF NOT EXISTS payments (
            id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            amount BIGINT NOT NULL,
            currency TEXT NOT NULL,
            provider TEXT NOT NULL,
            provider_order_id TEXT NOT NULL UNIQUE,
            provider_payment_id TEXT UNIQUE,
            key_id TEXT NOT NULL,
            status TEXT NOT NULL,
            refunded_amount BIGINT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            captured_at TEXT
        )",
        "CREATE INDEX IF NOT EXISTS payments_order ON payments (order_id, created_at)",
        "CREATE TABLE IF NOT EXISTS payment_refunds (
            id TEXT PRIMARY KEY,
            payment_id TEXT NOT NULL,
            order_id TEXT NOT NULL,
            amount BIGINT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS payment_refunds_order ON payment_refunds (order_id, id)",
        // Refunds made at the provider (`refund.processed`), by the provider's refund id:
        // each is recorded once however often and in whatever body it is reported.
        "CREATE TABLE IF NOT EXISTS provider_refunds (
            provider_refund_id TEXT PRIMARY KEY,
            refund_id TEXT NOT NULL UNIQUE,
            payment_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        )",
        // The payment that paid an order: the first capture claims it; a later capture
        // for the same order is a duplicate and is refunded.
        "CREATE TABLE IF NOT EXISTS order_captures (
            order_id TEXT PRIMARY KEY,
            payment_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        )",
        // Webhook bodies already handled, by SHA-256, so replays change nothing.
        "CREATE TABLE IF NOT EXISTS webhook_events (
            digest TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            provider_order_id TEXT,
            outcome TEXT,
            received_at TEXT NOT NULL
        )",
    ])?;
    kirana_sdk::idempotency::migrate()
}

/// One refund of a payment.
#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub reason: String,
    /// The provider's id of a refund made there (reason `provider`); else `null`.
    pub provider_refund_id: Option<String>,
    pub created_at: String,
}

/// A payment as the API shows it; `refunds` is filled by a second query.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    pub amount: i64,
    pub currency: String,
    pub provider: String,
    pub provider_order_id: String,
    pub provider_payment_id: Option<String>,
    pub key_id: String,
    pub status: String,
    pub refunded_amount: i64,
    #[row(default)]
    pub refunds: Vec<Refund>,
    pub created_at: String,
    pub updated_at: String,
    pub captured_at: Option<String>,
}

impl Payment {
    /// The status as the enum; an unknown stored value reads as `created` (never
    /// capturable by mistake since every write goes through the enum).
    pub fn state(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Created)
    }
}

const COLUMNS: &str = "id, order_id, user_id, amount, currency, provider, provider_order_id, \
    provider_payment_id, key_id, status, refunded_amount, created_at, updated_at, captured_at";

pub fn insert(p: &Payment) -> Result<(), CapError> {
    sql::execute(
        &format!(
            "INSERT INTO payments ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        &params![
            p.id,
            p.order_id,
            p.user_id,
            p.amount,
            p.currency,
            p.provider,
            p.provider_order_id,
            p.provider_payment_id,
            p.key_id,
            p.status,
            p.refunded_amount,
            p.created_at,
            p.updated_at,
            p.captured_at
        ],
    )?;
    Ok(())
}

/// Fills in `refunds` (oldest first) of payments that all belong to `order_id`.
fn attach_refunds(order_id: &str, payments: &mut [Payment]) -> Result<(), CapError> {
    if payments.iter().all(|p| p.refunded_amount == 0) {
        return Ok(());
    }
    let rows = sql::query(
        "SELECT r.id, r.payment_id, r.amount, r.reason, r.created_at, p.provider_refund_id \
         FROM payment_refunds r LEFT JOIN provider_refunds p ON p.refund_id = r.id \
         WHERE r.order_id = $1 ORDER BY r.id",
        &params![order_id],
    )?;
    for r in rows.iter() {
        let payment_id: String = r.get("payment_id")?;
        if let Some(p) = payments.iter_mut().find(|p| p.id == payment_id) {
            p.refunds.push(Refund {
                id: r.get("id")?,
                amount: r.get("amount")?,
                reason: r.get("reason")?,
                provider_refund_id: r.get("provider_refund_id")?,
                created_at: r.get("created_at")?,
            });
        }
    }
    Ok(())
}

fn one_with_refunds(found: Option<Payment>) -> Result<Option<Payment>, CapError> {
    let Some(p) = found else {
        return Ok(None);
    };
    let order_id = p.order_id.clone();
    let mut one = [p];
    attach_refunds(&order_id, &mut one)?;
    let [p] = one;
    Ok(Some(p))
}

pub fn find(id: &str) -> Result<Option<Payment>, CapError> {
    let found = sql::query_one::<Payment>(
        &format!("SELECT {COLUMNS} FROM payments WHERE id = $1"),
        &params![id],
    )?;
    one_with_refunds(found)
}

pub fn find_by_provider_order(provider_order_id: &str) -> Result<Option<Payment>, CapError> {
    let found = sql::query_one::<Payment>(
        &format!("SELECT {COLUMNS} FROM payments WHERE provider_order_id = $1"),
        &params![provider_order_id],
    )?;
    one_with_refunds(found)
}

/// The payment the provider knows as `provider_payment_id`.
pub fn find_by_provider_payment(provider_payment_id: &str) -> Result<Option<Payment>, CapError> {
    let found = sql::query_one::<Payment>(
        &format!("SELECT {COLUMNS} FROM payments WHERE provider_payment_id = $1"),
        &params![provider_payment_id],
    )?;
    one_with_refunds(found)
}

/// Whether the provider's refund `provider_refund_id` is recorded.
pub fn provider_refund_known(provider_refund_id: &str) -> Result<bool, CapError> {
    let rows = sql::query(
        "SELECT refund_id FROM provider_refunds WHERE provider_refund_id = $1",
        &params![provider_refund_id],
    )?;
    Ok(!rows.is_empty())
}

/// Every payment of an order, newest first.
pub fn by_order(order_id: &str) -> Result<Vec<Payment>, CapError> {
    let mut payments = sql::query_as::<Payment>(
        &format!(
            "SELECT {COLUMNS} FROM payments WHERE order_id = $1 \
             ORDER BY created_at DESC, id DESC"
        ),
        &params![order_id],
    )?;
    attach_refunds(order_id, &mut payments)?;
    Ok(payments)
}

/// The payment that paid `order_id`, if any capture happened.
pub fn order_payer(order_id: &str) -> Result<Option<String>, CapError> {
    let rows = sql::query(
        "SELECT payment_id FROM order_captures WHERE order_id = $1",
        &params![order_id],
    )?;
    match rows.first() {
        Some(r) => Ok(Some(r.get("payment_id")?)),
        None => Ok(None),
    }
}
