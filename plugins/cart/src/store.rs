//! The cart's own tables. Only what the customer chose is stored (product and
//! quantity), never a price: prices always come from the catalog when the cart is read.
//!
//! `carts` holds one row per user who ever changed a cart; `updated_us` (microseconds
//! since the epoch) drives expiry and `updated_at` is the same instant for clients.
//! `cart_items.added_us` keeps the lines in the order they were first added.
//! `carts.coupon_code` is the coupon the customer applied (the code as the `promotions`
//! plugin spells it), `NULL` for none: never a discount, which is quoted when read.
//! `carts.rev` counts the cart's changes: every change bumps it first, in its own
//! transaction (which also locks the cart against other changes until it commits), so
//! revisions grow in commit order and key the cached reads ([`Revisioned`]). A row is
//! never deleted, or its count would start over: an expired cart keeps its row with
//! `updated_us = 0`, which reads as no cart.

use std::time::Duration;

use kirana_sdk::cache::Revisioned;
use kirana_sdk::prelude::*;
use kirana_sdk::sql::{self, Dialect};
use kirana_sdk::CapError;

use crate::catalog::{Prices, PricesRef};
use crate::rules::{CartConfig, Line};

/// Carts as last read or written, one entry per user (see [`Revisioned`]), kept for
/// `[cart] cache_seconds`.
fn carts(config: &CartConfig) -> Revisioned {
    Revisioned::new(
        "carts",
        <crate::Cart as Plugin>::VERSION,
        Duration::from_secs(config.cache_seconds),
    )
}

/// A cached cart: the cart, and the products of its lines as last priced (postcard).
fn encode(cart: &StoredCart, prices: Option<PricesRef<'_>>) -> Option<Vec<u8>> {
    postcard::to_allocvec(&(cart, prices)).ok()
}

/// A cached cart, its kept products in [`StoredCart::prices`]; `None` when it cannot be
/// read (never expected: entries are per plugin version).
fn decode(entry: &[u8]) -> Option<StoredCart> {
    let (mut cart, prices): (StoredCart, Option<Prices>) = postcard::from_bytes(entry).ok()?;
    cart.prices = prices;
    Some(cart)
}

/// Records the cart as this call leaves it, once the call commits, when it is known
/// exactly (see [`StoredCart::advance`]), with the products it was priced with when
/// they may be kept; readers then get it without a read.
pub fn publish(
    user_id: &str,
    cart: &StoredCart,
    prices: Option<PricesRef<'_>>,
    config: &CartConfig,
) {
    if cart.inexact {
        return;
    }
    if let Some(bytes) = encode(cart, prices) {
        carts(config).wrote(user_id, cart.rev, Some(&bytes));
    }
}

/// One of the cart's tables: its name, its columns as created, and their names.
struct Table {
    name: &'static str,
    columns: &'static str,
    names: &'static str,
}

/// On SQLite both tables are `WITHOUT ROWID`, so a row lives in its primary key's
/// b-tree: an add looks up and writes one b-tree per table instead of a key index and
/// a rowid table (about 4 % of an add's host time, see BENCHMARKS.md). PostgreSQL
/// tables are heaps with a key index either way.
const TABLES: [Table; 2] = [
    Table {
        name: "carts",
        columns: "user_id TEXT PRIMARY KEY,
            updated_at TEXT NOT NULL,
            updated_us BIGINT NOT NULL,
            coupon_code TEXT,
            rev BIGINT NOT NULL DEFAULT 0",
        names: "user_id, updated_at, updated_us, coupon_code, rev",
    },
    Table {
        name: "cart_items",
        columns: "user_id TEXT NOT NULL,
            product_id TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            added_at TEXT NOT NULL,
            added_us BIGINT NOT NULL,
            PRIMARY KEY (user_id, product_id)",
        names: "user_id, product_id, quantity, added_at, added_us",
    },
];

/// What SQLite adds to a `CREATE TABLE` of [`TABLES`].
const SQLITE_TABLE_OPTIONS: &str = " WITHOUT ROWID";

/// Creates the tables and brings older ones forward; idempotent, as `migrate` runs at
/// every load (in the migration's transaction, so a rebuild is all or nothing).
pub fn migrate() -> Result<(), CapError> {
    let sqlite = sql::dialect() == Dialect::Sqlite;
    let options = if sqlite { SQLITE_TABLE_OPTIONS } else { "" };
    for t in &TABLES {
        sql::execute(
            &format!(
                "CREATE TABLE IF NOT EXISTS {} ({}){options}",
                t.name, t.columns
            ),
            &[],
        )?;
    }
    // Carts made before these columns existed.
    add_column("coupon_code", "TEXT")?;
    add_column("rev", "BIGINT NOT NULL DEFAULT 0")?;
    if sqlite {
        for t in &TABLES {
            rebuild_without_rowid(t)?;
        }
    }
    Ok(())
}

/// Rebuilds a SQLite table made with a rowid (before 2026-12-07) as `WITHOUT ROWID`,
/// rows and all; a table already without one is left alone.
fn rebuild_without_rowid(t: &Table) -> Result<(), CapError> {
    let with_rowid: i64 = sql::query(
        "SELECT COUNT(*) AS n FROM sqlite_master
         WHERE type = 'table' AND name = $1 AND sql NOT LIKE '%WITHOUT ROWID'",
        &params![t.name],
    )?
    .scalar()?;
    if with_rowid == 0 {
        return Ok(());
    }
    let Table {
        name,
        columns,
        names,
    } = t;
    sql::execute_batch(&[
        &format!("CREATE TABLE {name}_rebuilt ({columns}){SQLITE_TABLE_OPTIONS}"),
        &format!("INSERT INTO {name}_rebuilt ({names}) SELECT {names} FROM {name}"),
        &format!("DROP TABLE {name}"),
        &format!("ALTER TABLE {name}_rebuilt RENAME TO {name}"),
    ])
}

/// Adds a column to `carts` made before it existed. SQLite has no `ADD COLUMN IF NOT
/// EXISTS`, so there the schema is asked first.
fn add_column(name: &str, definition: &str) -> Result<(), CapError> {
    match sql::dialect() {
        Dialect::Postgres => {
            sql::execute(
                &format!("ALTER TABLE carts ADD COLUMN IF NOT EXISTS {name} {definition}"),
                &[],
            )?;
        }
        Dialect::Sqlite => {
            let present: i64 = sql::query(
                "SELECT COUNT(*) AS n FROM pragma_table_info('carts') WHERE name = $1",
                &params![name],
            )?
            .scalar()?;
            if present == 0 {
                sql::execute(
                    &format!("ALTER TABLE carts ADD COLUMN {name} {definition}"),
                    &[],
                )?;
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
/// (`None` for a cart never used, or one that expired; `updated_us` is the same
/// instant, for expiry), its coupon code, and the revision it is at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredCart {
    pub lines: Vec<Line>,
    pub updated_at: Option<String>,
    #[serde(default)]
    pub updated_us: Option<i64>,
    pub coupon_code: Option<String>,
    #[serde(default)]
    pub rev: u64,
    /// The products of its lines as the catalog last priced them, kept in the cached
    /// copy only, beside the cart (see [`crate::catalog::lookup`]).
    #[serde(skip)]
    pub prices: Option<Prices>,
    /// Someone else changed the cart between our read and our change: this copy is not
    /// the cart at `rev`, and is not published.
    #[serde(skip)]
    pub inexact: bool,
    /// Reading it wiped an expired cart (a write of this call, not yet committed).
    #[serde(skip)]
    pub wiped: bool,
}

impl StoredCart {
    /// The stored quantity of `product_id`, if it is in the cart.
    pub fn quantity_of(&self, product_id: &str) -> Option<i64> {
        self.lines
            .iter()
            .find(|l| l.product_id == product_id)
            .map(|l| l.quantity)
    }

    /// Moves this copy to the revision a change of it made; the caller applies the same
    /// change to it. True while the copy is still exact: the change came right after the
    /// revision this copy was at, so nobody else changed the cart in between (every
    /// change bumps the revision first, and holds the cart until it commits).
    pub fn advance(&mut self, rev: u64) -> bool {
        self.inexact |= rev != self.rev.saturating_add(1);
        self.rev = rev;
        !self.inexact
    }

    /// [`StoredCart::advance`] for a change the customer made: it also moves the
    /// cart's change time.
    pub fn apply(&mut self, change: &Touched) -> bool {
        self.updated_at = Some(change.updated_at.clone());
        self.updated_us = Some(change.updated_us);
        self.advance(change.rev)
    }
}

/// `user_id`'s cart for a reader: the cached one when known, else [`load_stored`]'s,
/// offered to the cache. A cached cart past its expiry is read again, which wipes it.
pub fn load(user_id: &str, config: &CartConfig) -> Result<StoredCart, CapError> {
    if let Some(cart) = cached(user_id, config) {
        return Ok(cart);
    }
    let cart = load_stored(user_id, config)?;
    if !cart.wiped {
        if let Some(bytes) = encode(&cart, None) {
            carts(config).offer(user_id, cart.rev, &bytes);
        }
    }
    Ok(cart)
}

/// [`load`] for a request about to change the cart: the cached cart, else the
/// database's. The cached one may be behind the database (a change the cache missed);
/// the change's [`StoredCart::advance`] tells, and the caller then reads again.
pub fn load_for_change(user_id: &str, config: &CartConfig) -> Result<StoredCart, CapError> {
    match cached(user_id, config) {
        Some(cart) => Ok(cart),
        None => load_stored(user_id, config),
    }
}

/// The cached cart at its revision, unless it is unknown, cannot be decoded (never
/// expected: values are per plugin version) or has expired.
fn cached(user_id: &str, config: &CartConfig) -> Option<StoredCart> {
    let held = carts(config).get(user_id)?;
    let mut cart = decode(&held.value?)?;
    let cutoff = config.expiry_cutoff_us(now_stamp().1);
    if cart
        .updated_us
        .is_some_and(|us| cutoff.is_some_and(|c| us < c))
    {
        return None;
    }
    cart.rev = held.revision;
    Some(cart)
}

/// Reads `user_id`'s cart from the database in ONE statement (the cart row with its
/// lines), emptying it first when it has expired (lazy expiry: there is no sweeper; an
/// expired cart is wiped the next time anyone reads or changes it). The wipe's writes
/// run only for a cart found stale, so reading a live cart takes no write lock. Lines
/// without a cart row cannot exist: every change touches the cart row in the same
/// transaction. Checkout reads this way, never from the cache.
pub fn load_stored(user_id: &str, config: &CartConfig) -> Result<StoredCart, CapError> {
    let rows = sql::query(
        "SELECT c.updated_at, c.updated_us, c.coupon_code, c.rev, i.product_id, i.quantity
         FROM carts c LEFT JOIN cart_items i ON i.user_id = c.user_id
         WHERE c.user_id = $1
         ORDER BY i.added_us, i.product_id",
        &params![user_id],
    )?;
    let mut cart = StoredCart::default();
    for (n, row) in rows.iter().enumerate() {
        if n == 0 {
            cart.rev = u64::try_from(row.get::<i64>("rev")?).unwrap_or(0);
            let changed_us: i64 = row.get("updated_us")?;
            if changed_us == 0 {
                return Ok(cart); // wiped: no cart
            }
            if config
                .expiry_cutoff_us(now_stamp().1)
                .is_some_and(|cutoff| changed_us < cutoff)
            {
                return expire(user_id, config, cart.rev);
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

/// Wipes the cart, read at `rev`, when it last changed before the TTL: the cart row
/// first (marked wiped, its coupon dropped), only while it is still stale, so a
/// concurrent change (which touches the cart row before writing its line) is never
/// lost; then its lines. Returns the empty cart.
fn expire(user_id: &str, config: &CartConfig, rev: u64) -> Result<StoredCart, CapError> {
    let mut cart = StoredCart {
        rev,
        ..StoredCart::default()
    };
    let Some(cutoff) = config.expiry_cutoff_us(now_stamp().1) else {
        return Ok(cart);
    };
    let wiped = sql::query(
        "UPDATE carts SET rev = rev + 1, updated_us = 0, updated_at = '', coupon_code = NULL
         WHERE user_id = $1 AND updated_us > 0 AND updated_us < $2
         RETURNING rev",
        &params![user_id, cutoff],
    )?;
    if wiped.first().is_none() {
        // Changed meanwhile: read it as it is now.
        return load_stored(user_id, config);
    }
    let new_rev = bumped(user_id, wiped.first(), config)?;
    sql::execute(
        "DELETE FROM cart_items WHERE user_id = $1",
        &params![user_id],
    )?;
    cart.advance(new_rev);
    cart.wiped = true;
    Ok(cart)
}

fn revision(row: sql::Row<'_>) -> Result<u64, CapError> {
    let rev: i64 = row.get("rev")?;
    u64::try_from(rev).map_err(|_| CapError::Invalid(format!("a cart revision of {rev}")))
}

/// The revision a change's statement returned (its `RETURNING rev` row). Every change
/// of a cart goes through here, which records the revision in the cache: once the
/// change commits, readers no longer get an older cart (they read the database until
/// [`publish`] gives the cart at that revision). A bump always returns its row.
fn bumped(user_id: &str, row: Option<sql::Row<'_>>, config: &CartConfig) -> Result<u64, CapError> {
    let row = row.ok_or_else(|| CapError::Failed("a cart change returned no revision".into()))?;
    let rev = revision(row)?;
    carts(config).wrote(user_id, rev, None);
    Ok(rev)
}

/// Records that a cart changed: `$1` user, `$2` `updated_at`, `$3` `updated_us`; the
/// new revision comes back as `rev`.
const TOUCH: &str =
    "INSERT INTO carts (user_id, updated_at, updated_us, rev) VALUES ($1, $2, $3, 1)
         ON CONFLICT (user_id) DO UPDATE
         SET updated_at = excluded.updated_at, updated_us = excluded.updated_us,
             rev = carts.rev + 1
         RETURNING rev";

/// A change's new `updated_at` (and `updated_us`) and revision.
pub struct Touched {
    pub updated_at: String,
    pub updated_us: i64,
    pub rev: u64,
}

/// Records that the cart changed now: its new `updated_at` and revision.
pub fn touch(user_id: &str, config: &CartConfig) -> Result<Touched, CapError> {
    let (at, us) = now_stamp();
    let rev = bumped(
        user_id,
        sql::query(TOUCH, &params![user_id, at, us])?.first(),
        config,
    )?;
    Ok(Touched {
        updated_at: at,
        updated_us: us,
        rev,
    })
}

/// Records that the cart changed now and sets its coupon (`None` removes it). One
/// statement: the cart row is the first row a change writes.
pub fn set_coupon(
    user_id: &str,
    code: Option<&str>,
    config: &CartConfig,
) -> Result<Touched, CapError> {
    let (at, us) = now_stamp();
    // Text even for "none": a NULL parameter has no text type on PostgreSQL.
    let changed = sql::query(
        "INSERT INTO carts (user_id, updated_at, updated_us, coupon_code, rev)
         VALUES ($1, $2, $3, NULLIF($4, ''), 1)
         ON CONFLICT (user_id) DO UPDATE
         SET updated_at = excluded.updated_at, updated_us = excluded.updated_us,
             coupon_code = excluded.coupon_code, rev = carts.rev + 1
         RETURNING rev",
        &params![user_id, at, us, code.unwrap_or("")],
    )?;
    let rev = bumped(user_id, changed.first(), config)?;
    Ok(Touched {
        updated_at: at,
        updated_us: us,
        rev,
    })
}

/// Records the change and adds `quantity` to the line (creating it), only while an
/// existing line stays within `bound`: the change, and the line's new quantity (`None`
/// when the line exists and has no room). One atomic statement for the line, so
/// concurrent adds (a double tap) never lose units. On PostgreSQL the cart row and the
/// line are written by one statement (one round trip, no savepoint).
pub fn add_to_line(
    user_id: &str,
    product_id: &str,
    quantity: i64,
    bound: i64,
    config: &CartConfig,
) -> Result<(Touched, Option<i64>), CapError> {
    const UPSERT: &str =
        "INSERT INTO cart_items (user_id, product_id, quantity, added_at, added_us)
         VALUES ($1, $4, $5, $2, $3)
         ON CONFLICT (user_id, product_id) DO UPDATE
         SET quantity = cart_items.quantity + excluded.quantity
         WHERE cart_items.quantity + excluded.quantity <= $6
         RETURNING quantity";
    match sql::dialect() {
        Dialect::Postgres => {
            let (at, us) = now_stamp();
            let params = params![user_id, at, us, product_id, quantity, bound];
            // Both run whether or not the line had room; the row says which.
            let rows = sql::query(
                &format!(
                    "WITH touched AS ({TOUCH}), added AS ({UPSERT})
                     SELECT t.rev, a.quantity FROM touched t LEFT JOIN added a ON true"
                ),
                &params,
            )?;
            let row = rows.first();
            let quantity: Option<i64> = match &row {
                Some(row) => row.get("quantity")?,
                None => None,
            };
            let rev = bumped(user_id, row, config)?;
            let touched = Touched {
                updated_at: at,
                updated_us: us,
                rev,
            };
            Ok((touched, quantity))
        }
        Dialect::Sqlite => {
            let touched = touch(user_id, config)?;
            let params = params![
                user_id,
                touched.updated_at.clone(),
                touched.updated_us,
                product_id,
                quantity,
                bound
            ];
            let rows = sql::query(UPSERT, &params)?;
            let added = rows.first().map(|r| r.get::<i64>("quantity")).transpose()?;
            Ok((touched, added))
        }
    }
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

/// Sets a line's quantity (after [`touch`]); `false` when the line is not in the cart.
pub fn set_quantity(user_id: &str, product_id: &str, quantity: i64) -> Result<bool, CapError> {
    let n = sql::execute(
        "UPDATE cart_items SET quantity = $3 WHERE user_id = $1 AND product_id = $2",
        &params![user_id, product_id, quantity],
    )?;
    Ok(n == 1)
}

/// Removes a line (after [`touch`]); `false` when it was not in the cart.
pub fn remove_line(user_id: &str, product_id: &str) -> Result<bool, CapError> {
    let n = sql::execute(
        "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2",
        &params![user_id, product_id],
    )?;
    Ok(n > 0)
}

/// Removes lines whose product can no longer be bought, as a change of its own that
/// leaves `updated_at` alone (the customer did nothing): its new revision.
pub fn drop_lines(
    user_id: &str,
    product_ids: &[String],
    config: &CartConfig,
) -> Result<u64, CapError> {
    let bump = sql::query(
        "UPDATE carts SET rev = rev + 1 WHERE user_id = $1 RETURNING rev",
        &params![user_id],
    )?;
    let rev = bumped(user_id, bump.first(), config)?;
    for product_id in product_ids {
        remove_line(user_id, product_id)?;
    }
    Ok(rev)
}

/// Removes every line of the cart (after [`touch`] or [`set_coupon`]).
pub fn clear(user_id: &str) -> Result<(), CapError> {
    sql::execute(
        "DELETE FROM cart_items WHERE user_id = $1",
        &params![user_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Product;

    #[test]
    fn a_cached_cart_reads_back_with_its_prices_and_without_its_call_state() {
        let product = Product {
            id: "prd_1".into(),
            name: "Atta \"chakki\"".into(),
            unit: "5 kg".into(),
            image_url: None,
            price: 28900,
            mrp: 31500,
            stock: 3,
            is_active: true,
        };
        let cart = StoredCart {
            lines: vec![Line {
                product_id: "prd_1".into(),
                quantity: 2,
            }],
            updated_at: Some("2026-12-06T10:00:00Z".into()),
            updated_us: Some(1_765_015_200_000_000),
            coupon_code: Some("SAVE10".into()),
            rev: u64::MAX,
            prices: None,
            inexact: false,
            wiped: true,
        };
        let prices = PricesRef {
            stamp: "4.0.17",
            products: vec![&product],
        };
        let back = decode(&encode(&cart, Some(prices)).unwrap()).unwrap();
        assert_eq!(back.lines, cart.lines);
        assert_eq!(
            (back.updated_at, back.updated_us, back.coupon_code, back.rev),
            (
                cart.updated_at.clone(),
                cart.updated_us,
                cart.coupon_code.clone(),
                u64::MAX
            )
        );
        assert_eq!(
            back.prices,
            Some(Prices {
                stamp: "4.0.17".into(),
                products: vec![product],
            })
        );
        assert!(!back.wiped, "a call's own state is not stored");
        let bare = decode(&encode(&StoredCart::default(), None).unwrap()).unwrap();
        assert!(bare.lines.is_empty() && bare.prices.is_none() && bare.rev == 0);
        assert!(decode(b"").is_none() && decode(b"{\"lines\":[]}").is_none());
    }
}
