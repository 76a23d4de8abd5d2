//! The cart's own tables. Only what the customer chose is stored (product and
//! quantity), never a price: prices always come from the catalog when the cart is read.
//!
//! `carts` holds one row per user who ever changed a cart; `updated_us` (microseconds
//! since the epoch) drives expiry and `updated_at` is the same instant for clients.
//! `cart_items.added_us` keeps the lines in the order they were first added.
//! `carts.coupon_code` is the coupon the customer applied (the code as the `promotions`
//! plugin spells it), `NULL` for none: never a discount, which is quoted when read.

use std::time::Duration;

use kirana_sdk::cache::Versioned;
use kirana_sdk::prelude::*;
use kirana_sdk::sql::{self, Dialect};
use kirana_sdk::{serde_json, CapError};

use crate::rules::{CartConfig, Line};

/// How long a cart read is kept in KV (`[cart] cache_seconds`; 0 turns it off). The
/// cache is exact (every change below moves the cart's version once it commits); the
/// TTL only bounds how long an entry can outlive a version change the KV store missed.
const DEFAULT_CACHE_SECS: u64 = 60;

/// Carts as last read from the database, one entry per user (see [`Versioned`]).
fn carts() -> Versioned {
    let secs = kirana_sdk::config::get_or("cache_seconds", DEFAULT_CACHE_SECS);
    Versioned::new(
        "carts",
        <crate::Cart as Plugin>::VERSION,
        Duration::from_secs(secs),
    )
}

/// Every change of a user's cart calls this, so the cart's cached read is dropped once
/// the change commits.
fn changed(user_id: &str) {
    carts().invalidate(user_id);
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS carts (
        user_id TEXT PRIMARY KEY,
        updated_at TEXT NOT NULL,
        updated_us BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS cart_items (
        user_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        added_at TEXT NOT NULL,
        added_us BIGINT NOT NULL,
        PRIMARY KEY (user_id, product_id)
    )",
];

/// Creates the tables; idempotent, as `migrate` runs at every load.
pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(SCHEMA)?;
    add_coupon_code()
}

/// `carts.coupon_code`, added once to carts made before coupons existed. SQLite has no
/// `ADD COLUMN IF NOT EXISTS`, so there the schema is asked first.
fn add_coupon_code() -> Result<(), CapError> {
    match sql::dialect() {
        Dialect::Postgres => {
            sql::execute(
                "ALTER TABLE carts ADD COLUMN IF NOT EXISTS coupon_code TEXT",
                &[],
            )?;
        }
        Dialect::Sqlite => {
            let present: i64 = sql::query(
                "SELECT COUNT(*) AS n FROM pragma_table_info('carts') WHERE name = 'coupon_code'",
                &[],
            )?
            .scalar()?;
            if present == 0 {
                sql::execute("ALTER TABLE carts ADD COLUMN coupon_code TEXT", &[])?;
            }
        }
    }
    Ok(())
}

/// The current instant as RFC 3339 (for clients) and microseconds (for ordering and
/// expiry), taken from one clock reading.
pub fn now_stamp() -> (String, i64) {
    let now = kirana_sdk::now();
    let micros = now.unix_timestamp_nanos() / 1_000;
    (
        kirana_sdk::rfc3339(now),
        i64::try_from(micros).unwrap_or(i64::MAX),
    )
}

/// A user's stored cart: its lines in the order they were added, when it last changed
/// (`None` for a cart never used, or one that just expired; `updated_us` is the same
/// instant, for expiry) and its coupon code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredCart {
    pub lines: Vec<Line>,
    pub updated_at: Option<String>,
    #[serde(default)]
    pub updated_us: Option<i64>,
    pub coupon_code: Option<String>,
}

impl StoredCart {
    /// The stored quantity of `product_id`, if it is in the cart.
    pub fn quantity_of(&self, product_id: &str) -> Option<i64> {
        self.lines
            .iter()
            .find(|l| l.product_id == product_id)
            .map(|l| l.quantity)
    }
}

/// `user_id`'s cart: the cached read while the cart has not changed since, else
/// [`load_stored`]'s, kept for the next read. A cached cart past its expiry is read
/// again, which wipes it.
pub fn load(user_id: &str, config: &CartConfig) -> Result<StoredCart, CapError> {
    let mut read = None;
    let raw = carts().get_or_compute(user_id, || {
        let cart = load_stored(user_id, config)?;
        let bytes = serde_json::to_vec(&cart).map_err(|e| CapError::Invalid(e.to_string()));
        read = Some(cart);
        bytes
    })?;
    match read {
        // Just read from the database (expired carts already wiped): not parsed back.
        Some(cart) => Ok(cart),
        None => current(user_id, config, &raw),
    }
}

/// [`load`] for a request about to change the cart: the cached read if there is one,
/// else the database's, not kept (the change replaces it at once).
pub fn load_for_change(user_id: &str, config: &CartConfig) -> Result<StoredCart, CapError> {
    match carts().peek(user_id) {
        Some(raw) => current(user_id, config, &raw),
        None => load_stored(user_id, config),
    }
}

/// A cached read as a cart, read again from the database when it has expired (which
/// wipes it) or cannot be decoded (never expected: entries are per plugin version).
fn current(user_id: &str, config: &CartConfig, raw: &[u8]) -> Result<StoredCart, CapError> {
    let Ok(cart) = serde_json::from_slice::<StoredCart>(raw) else {
        return load_stored(user_id, config);
    };
    let expired = |us: i64| {
        config
            .expiry_cutoff_us(now_stamp().1)
            .is_some_and(|cutoff| us < cutoff)
    };
    if cart.updated_us.is_some_and(expired) {
        return load_stored(user_id, config);
    }
    Ok(cart)
}

/// Reads `user_id`'s cart from the database in ONE statement (the cart row with its
/// lines), emptying it first when it has expired (lazy expiry: there is no sweeper; an
/// expired cart is wiped the next time anyone reads or changes it). The wipe's writes
/// run only for a cart found stale, so reading a live cart takes no write lock. Lines
/// without a cart row cannot exist: every change touches the cart row in the same
/// transaction. Checkout reads this way, never from the cache.
pub fn load_stored(user_id: &str, config: &CartConfig) -> Result<StoredCart, CapError> {
    let rows = sql::query(
        "SELECT c.updated_at, c.updated_us, c.coupon_code, i.product_id, i.quantity
         FROM carts c LEFT JOIN cart_items i ON i.user_id = c.user_id
         WHERE c.user_id = $1
         ORDER BY i.added_us, i.product_id",
        &params![user_id],
    )?;
    let mut cart = StoredCart::default();
    for row in rows.iter() {
        if cart.updated_at.is_none() {
            let changed_us: i64 = row.get("updated_us")?;
            if config
                .expiry_cutoff_us(now_stamp().1)
                .is_some_and(|cutoff| changed_us < cutoff)
            {
                expire(user_id, config)?;
                return Ok(StoredCart::default());
            }
            cart.updated_at = Some(row.get("updated_at")?);
            cart.updated_us = Some(changed_us);
            cart.coupon_code = row.get("coupon_code")?;
        }
        let product_id: Option<String> = row.get("product_id")?;
        if let Some(product_id) = product_id {
            cart.lines.push(Line {
                product_id,
                quantity: row.get("quantity")?,
            });
        }
    }
    Ok(cart)
}

/// Wipes the cart when it last changed before the TTL. The items go first and only
/// while the cart row is still stale, so a concurrent change (which touches the cart
/// row before writing its line) is never lost.
pub fn expire(user_id: &str, config: &CartConfig) -> Result<(), CapError> {
    let Some(cutoff) = config.expiry_cutoff_us(now_stamp().1) else {
        return Ok(());
    };
    changed(user_id);
    sql::execute(
        "DELETE FROM cart_items WHERE user_id = $1 AND EXISTS (
             SELECT 1 FROM carts WHERE carts.user_id = $1 AND carts.updated_us < $2)",
        &params![user_id, cutoff],
    )?;
    sql::execute(
        "DELETE FROM carts WHERE user_id = $1 AND updated_us < $2",
        &params![user_id, cutoff],
    )?;
    Ok(())
}

/// Records that a cart changed: `$1` user, `$2` `updated_at`, `$3` `updated_us`.
const TOUCH: &str = "INSERT INTO carts (user_id, updated_at, updated_us) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE
         SET updated_at = excluded.updated_at, updated_us = excluded.updated_us";

/// Records that the cart changed now; returns the new `updated_at`.
pub fn touch(user_id: &str) -> Result<String, CapError> {
    let (at, us) = now_stamp();
    changed(user_id);
    sql::execute(TOUCH, &params![user_id, at, us])?;
    Ok(at)
}

/// Records that the cart changed now and sets its coupon (`None` removes it); returns
/// the new `updated_at`. One statement: the cart row is the first row a change writes.
pub fn set_coupon(user_id: &str, code: Option<&str>) -> Result<String, CapError> {
    let (at, us) = now_stamp();
    changed(user_id);
    // Text even for "none": a NULL parameter has no text type on PostgreSQL.
    sql::execute(
        "INSERT INTO carts (user_id, updated_at, updated_us, coupon_code)
         VALUES ($1, $2, $3, NULLIF($4, ''))
         ON CONFLICT (user_id) DO UPDATE
         SET updated_at = excluded.updated_at, updated_us = excluded.updated_us,
             coupon_code = excluded.coupon_code",
        &params![user_id, at, us, code.unwrap_or("")],
    )?;
    Ok(at)
}

/// Records the change and adds `quantity` to the line (creating it), only while an
/// existing line stays within `bound`: the line's new quantity and the cart's new
/// `updated_at`, or `None` when the line exists and has no room. One atomic statement
/// for the line, so concurrent adds (a double tap) never lose units. On PostgreSQL the
/// cart row and the line are written by one statement (one round trip, no savepoint).
pub fn add_to_line(
    user_id: &str,
    product_id: &str,
    quantity: i64,
    bound: i64,
) -> Result<Option<(i64, String)>, CapError> {
    const UPSERT: &str =
        "INSERT INTO cart_items (user_id, product_id, quantity, added_at, added_us)
         VALUES ($1, $4, $5, $2, $3)
         ON CONFLICT (user_id, product_id) DO UPDATE
         SET quantity = cart_items.quantity + excluded.quantity
         WHERE cart_items.quantity + excluded.quantity <= $6
         RETURNING quantity";
    let (at, us) = now_stamp();
    changed(user_id);
    let params = params![user_id, at, us, product_id, quantity, bound];
    let rows = match sql::dialect() {
        Dialect::Postgres => sql::query(
            &format!("WITH touched AS ({TOUCH} RETURNING 1) {UPSERT}"),
            &params,
        )?,
        Dialect::Sqlite => {
            sql::execute(TOUCH, &params[..3])?;
            sql::query(UPSERT, &params)?
        }
    };
    rows.first()
        .map(|r| Ok((r.get::<i64>("quantity")?, at)))
        .transpose()
}

/// The stored quantity of one line, if it is in the cart.
pub fn line_quantity(user_id: &str, product_id: &str) -> Result<Option<i64>, CapError> {
    sql::query(
        "SELECT quantity FROM cart_items WHERE user_id = $1 AND product_id = $2",
        &params![user_id, product_id],
    )?
    .first()
    .map(|r| r.get::<i64>("quantity"))
    .transpose()
}

/// Sets a line's quantity; `false` when the line is not in the cart.
pub fn set_quantity(user_id: &str, product_id: &str, quantity: i64) -> Result<bool, CapError> {
    changed(user_id);
    let n = sql::execute(
        "UPDATE cart_items SET quantity = $3 WHERE user_id = $1 AND product_id = $2",
        &params![user_id, product_id, quantity],
    )?;
    Ok(n == 1)
}

/// Removes a line; `false` when it was not in the cart.
pub fn remove_line(user_id: &str, product_id: &str) -> Result<bool, CapError> {
    changed(user_id);
    let n = sql::execute(
        "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2",
        &params![user_id, product_id],
    )?;
    Ok(n > 0)
}

/// Removes every line of the cart.
pub fn clear(user_id: &str) -> Result<(), CapError> {
    changed(user_id);
    sql::execute(
        "DELETE FROM cart_items WHERE user_id = $1",
        &params![user_id],
    )?;
    Ok(())
}
