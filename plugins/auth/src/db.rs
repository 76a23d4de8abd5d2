//! The auth database: schema and every query, in SQL that runs on SQLite and Postgres.

use kirana_sdk::prelude::*;
use kirana_sdk::sql::{self, Tx};
use kirana_sdk::CapError;

use crate::input::{AddressInput, NewUser, ProfileChange};

/// Idempotent: run at every load. `email` and `password_hash` are nullable so that
/// phone-only (OTP) users can be added later without a table rebuild; `email` is stored
/// lowercased, which makes the UNIQUE constraint case-insensitive.
///
/// `users.phone` is what the user says their phone is, proven or not, and is not
/// unique. `proven_phones` holds the phones proven with a code: the primary key makes a
/// proven phone belong to one account, and `user_id` is unique because an account has
/// one phone. A row counts only while it matches the user's current phone (a changed
/// phone drops it). It came with this version, so existing phones start unproven.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        email TEXT UNIQUE,
        phone TEXT,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        password_hash TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS users_phone ON users (phone)",
    "CREATE INDEX IF NOT EXISTS users_role_created ON users (role, created_at)",
    "CREATE TABLE IF NOT EXISTS addresses (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        label TEXT NOT NULL,
        line1 TEXT NOT NULL,
        line2 TEXT,
        city TEXT NOT NULL,
        pincode TEXT NOT NULL,
        lat DOUBLE PRECISION NOT NULL,
        lon DOUBLE PRECISION NOT NULL,
        is_default BOOLEAN NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS addresses_user ON addresses (user_id, created_at)",
    "CREATE TABLE IF NOT EXISTS proven_phones (
        phone TEXT PRIMARY KEY,
        user_id TEXT NOT NULL UNIQUE,
        proven_at TEXT NOT NULL
    )",
];

pub fn migrate() -> Result<(), CapError> {
    sql::execute_batch(SCHEMA)?;
    sql::execute_batch(crate::otp::SCHEMA)?;
    sql::execute_batch(crate::reset::SCHEMA)?;
    sql::execute_batch(crate::lockout::SCHEMA)?;
    sql::execute_batch(crate::admin::SCHEMA)?;
    sql::execute_batch(crate::oidc::SCHEMA)?;
    backfill_proven_phones()
}

/// Once, on the first start with proven phones: an account made by an SMS login (no
/// email, which signup and admins always give) proved its phone by logging in with a
/// code, so its phone stays proven and its owner keeps signing in. Stated phones of
/// every other account start unproven. A marker row keeps later starts from treating a
/// phone changed since then as proven.
fn backfill_proven_phones() -> Result<(), CapError> {
    sql::execute_batch(&[
        "CREATE TABLE IF NOT EXISTS backfills (name TEXT PRIMARY KEY, done_at TEXT NOT NULL)",
    ])?;
    let done = sql::query(
        "SELECT COUNT(*) AS n FROM backfills WHERE name = 'proven_phones'",
        &params![],
    )?
    .scalar::<i64>()?;
    if done > 0 {
        return Ok(());
    }
    let now = now_rfc3339();
    sql::execute(
        "INSERT INTO proven_phones (phone, user_id, proven_at) \
         SELECT u.phone, u.id, $1 FROM users u \
         WHERE u.email IS NULL AND u.phone IS NOT NULL \
           AND u.created_at = (SELECT MIN(o.created_at) FROM users o \
                               WHERE o.email IS NULL AND o.phone = u.phone) \
         ON CONFLICT DO NOTHING",
        &params![now],
    )?;
    sql::execute(
        "INSERT INTO backfills (name, done_at) VALUES ('proven_phones', $1)",
        &params![now],
    )?;
    Ok(())
}

/// A user row. Serialises as the API's user
/// `{id, email, phone, phone_verified, name, role, created_at}`.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The phone was proven with a code by this account (only then does it log in).
    pub phone_verified: bool,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub created_at: String,
}

/// Users with their proof: `phone_verified` is whether this account proved its
/// current phone.
const USER_SELECT: &str = "SELECT u.id, u.email, u.phone, u.name, u.role, u.password_hash, \
     u.created_at, CASE WHEN p.user_id IS NULL THEN 0 ELSE 1 END AS phone_verified \
     FROM users u LEFT JOIN proven_phones p ON p.user_id = u.id AND p.phone = u.phone";

pub fn user_by_id(id: &str) -> Result<Option<User>, CapError> {
    sql::query_one(&format!("{USER_SELECT} WHERE u.id = $1"), &params![id])
}

/// `email` must already be normalised (see `input::normalize_email`).
pub fn user_by_email(email: &str) -> Result<Option<User>, CapError> {
    sql::query_one(
        &format!("{USER_SELECT} WHERE u.email = $1"),
        &params![email],
    )
}

/// The one account that proved this phone, whatever its role.
pub fn user_by_proven_phone(phone: &str) -> Result<Option<User>, CapError> {
    sql::query_one(
        &format!("{USER_SELECT} WHERE p.phone = $1"),
        &params![phone],
    )
}

/// The oldest admin, if any.
pub fn oldest_admin() -> Result<Option<User>, CapError> {
    sql::query_one(
        &format!("{USER_SELECT} WHERE u.role = 'admin' ORDER BY u.created_at, u.id LIMIT 1"),
        &[],
    )
}

/// A customer known only by phone (first OTP login): no email, no password, the phone
/// proven by the code that logged it in. `Conflict` when another account proved the
/// phone meanwhile (then nothing is inserted).
pub fn insert_phone_user(phone: &str) -> Result<User, CapError> {
    let now = now_rfc3339();
    let user = User {
        id: new_id("usr"),
        email: None,
        phone: Some(phone.to_string()),
        phone_verified: true,
        name: "Kirana customer".to_string(),
        role: "customer".to_string(),
        password_hash: None,
        created_at: now.clone(),
    };
    let tx = sql::begin()?;
    tx.execute(
        "INSERT INTO users (id, phone, name, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &params![user.id, user.phone, user.name, user.role, now, now],
    )?;
    tx.execute(
        "INSERT INTO proven_phones (phone, user_id, proven_at) VALUES ($1, $2, $3)",
        &params![phone, user.id, now],
    )?;
    tx.commit()?;
    Ok(user)
}

/// A customer made by a first OpenID Connect sign-in: no password, no phone; the email
/// only when the provider verified it. `Conflict` when the email is taken.
pub fn insert_oidc_user(tx: &Tx, email: Option<&str>, name: &str) -> Result<User, CapError> {
    let now = now_rfc3339();
    let user = User {
        id: new_id("usr"),
        email: email.map(str::to_string),
        phone: None,
        phone_verified: false,
        name: name.to_string(),
        role: "customer".to_string(),
        password_hash: None,
        created_at: now.clone(),
    };
    tx.execute(
        "INSERT INTO users (id, email, name, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &params![user.id, user.email, user.name, user.role, now, now],
    )?;
    Ok(user)
}

/// Drops what opened an account besides its email: the password (and its pending reset
/// tokens) and the proven phone. For an account whose email a provider just proved to
/// belong to someone who may not have made it (see `oidc`).
pub fn drop_unproven_credentials(user_id: &str) -> Result<(), CapError> {
    let now = now_rfc3339();
    let tx = sql::begin()?;
    tx.execute(
        "UPDATE users SET password_hash = NULL, updated_at = $1 WHERE id = $2",
        &params![now, user_id],
    )?;
    tx.execute(
        "UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        &params![now, user_id],
    )?;
    tx.execute(
        "DELETE FROM proven_phones WHERE user_id = $1",
        &params![user_id],
    )?;
    tx.commit()
}

/// Records that `user_id` proved `phone`, provided it is still the account's phone:
/// `Ok(true)` when it is (now or already) this account's proven phone, `Ok(false)` when
/// the account's phone is another one by now, `Conflict` when another account proved
/// the phone first.
pub fn prove_phone(user_id: &str, phone: &str) -> Result<bool, CapError> {
    let tx = sql::begin()?;
    // A proof of an older phone cannot outlive a change (PATCH /me drops it); this only
    // makes sure the unique `user_id` never blocks the new one.
    tx.execute(
        "DELETE FROM proven_phones WHERE user_id = $1 AND phone <> $2",
        &params![user_id, phone],
    )?;
    tx.execute(
        "INSERT INTO proven_phones (phone, user_id, proven_at) \
         SELECT $1, id, $3 FROM users WHERE id = $2 AND phone = $1 \
         ON CONFLICT (phone) DO NOTHING",
        &params![phone, user_id, now_rfc3339()],
    )?;
    let owner: Option<String> = tx
        .query(
            "SELECT user_id FROM proven_phones WHERE phone = $1",
            &params![phone],
        )?
        .first()
        .map(|r| r.at::<String>(0))
        .transpose()?;
    match owner {
        Some(owner) if owner != user_id => Err(CapError::Conflict(
            "the phone is proven by another account".into(),
        )),
        Some(_) => {
            tx.commit()?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Replaces the password hash; reset tokens issued for the old password die with it.
pub fn set_password(user_id: &str, password_hash: &str) -> Result<(), CapError> {
    let now = now_rfc3339();
    let tx = sql::begin()?;
    tx.execute(
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
        &params![password_hash, now, user_id],
    )?;
    tx.execute(
        "UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        &params![now, user_id],
    )?;
    tx.commit()
}

/// Inserts a user with an already hashed password; `Conflict` when the email is taken.
pub fn insert_user(tx: Option<&Tx>, user: &NewUser, password_hash: &str) -> Result<User, CapError> {
    let now = now_rfc3339();
    let row = User {
        id: new_id("usr"),
        email: Some(user.email.clone()),
        phone: user.phone.clone(),
        phone_verified: false,
        name: user.name.clone(),
        role: user.role.clone(),
        password_hash: Some(password_hash.to_string()),
        created_at: now.clone(),
    };
    let statement =
        "INSERT INTO users (id, email, phone, name, role, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let values = params![
        row.id,
        row.email,
        row.phone,
        row.name,
        row.role,
        password_hash,
        now,
        now
    ];
    match tx {
        Some(tx) => tx.execute(statement, &values)?,
        None => sql::execute(statement, &values)?,
    };
    Ok(row)
}

/// Inserts the bootstrap admin unless the email exists; true when inserted.
pub fn insert_user_if_absent(user: &NewUser, password_hash: &str) -> Result<bool, CapError> {
    let now = now_rfc3339();
    let n = sql::execute(
        "INSERT INTO users (id, email, phone, name, role, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email) DO NOTHING",
        &params![
            new_id("usr"),
            user.email,
            user.phone,
            user.name,
            user.role,
            password_hash,
            now,
            now
        ],
    )?;
    Ok(n > 0)
}

/// Applies a profile change; the caller re-reads the user afterwards. A different
/// phone (or none) drops the proof of the old one and any code sent to prove it.
pub fn update_profile(user: &User, change: &ProfileChange) -> Result<(), CapError> {
    let name = change.name.as_deref().unwrap_or(&user.name);
    let phone = match &change.phone {
        Some(p) => p.clone(),
        None => user.phone.clone(),
    };
    let tx = sql::begin()?;
    tx.execute(
        "UPDATE users SET name = $2, phone = $3, updated_at = $4 WHERE id = $1",
        &params![user.id, name, phone, now_rfc3339()],
    )?;
    if phone != user.phone {
        tx.execute(
            "DELETE FROM proven_phones WHERE user_id = $1",
            &params![user.id],
        )?;
        tx.execute(
            "DELETE FROM phone_proofs WHERE user_id = $1",
            &params![user.id],
        )?;
    }
    tx.commit()
}

/// One page of users, newest first, optionally of one role; with the total.
pub fn list_users(role: Option<&str>, paging: Paging) -> Result<(Vec<User>, i64), CapError> {
    let (filter, mut values) = match role {
        Some(r) => ("WHERE u.role = $1", params![r]),
        None => ("", params![]),
    };
    let total: i64 =
        sql::query(&format!("SELECT COUNT(*) FROM users u {filter}"), &values)?.scalar()?;
    let n = values.len();
    values.extend(params![paging.limit(), paging.offset()]);
    let users = sql::query_as(
        &format!(
            "{USER_SELECT} {filter}
             ORDER BY u.created_at DESC, u.id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &values,
    )?;
    Ok((users, total))
}

/// An address row, serialised as the API's address.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Address {
    pub id: String,
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub pincode: String,
    pub lat: f64,
    pub lon: f64,
    pub is_default: bool,
}

const ADDRESS_COLUMNS: &str = "id, label, line1, line2, city, pincode, lat, lon, is_default";

/// The user's addresses: the default first, then oldest first.
pub fn addresses_of(user_id: &str) -> Result<Vec<Address>, CapError> {
    sql::query_as(
        &format!(
            "SELECT {ADDRESS_COLUMNS} FROM addresses WHERE user_id = $1
             ORDER BY is_default DESC, created_at ASC, id ASC"
        ),
        &params![user_id],
    )
}

/// One of the user's addresses; `None` for an unknown id or another user's address.
pub fn address_of(user_id: &str, id: &str) -> Result<Option<Address>, CapError> {
    sql::query_one(
        &format!("SELECT {ADDRESS_COLUMNS} FROM addresses WHERE id = $1 AND user_id = $2"),
        &params![id, user_id],
    )
}

fn tx_address_of(tx: &Tx, user_id: &str, id: &str) -> Result<Option<Address>, CapError> {
    tx.query_one(
        &format!("SELECT {ADDRESS_COLUMNS} FROM addresses WHERE id = $1 AND user_id = $2"),
        &params![id, user_id],
    )
}

fn clear_default(tx: &Tx, user_id: &str) -> Result<(), CapError> {
    tx.execute(
        "UPDATE addresses SET is_default = $2 WHERE user_id = $1 AND is_default = $3",
        &params![user_id, false, true],
    )?;
    Ok(())
}

fn count_addresses(tx: &Tx, user_id: &str) -> Result<i64, CapError> {
    tx.query(
        "SELECT COUNT(*) FROM addresses WHERE user_id = $1",
        &params![user_id],
    )?
    .scalar()
}

fn address_from(id: String, input: &AddressInput, is_default: bool) -> Address {
    Address {
        id,
        label: input.label.clone(),
        line1: input.line1.clone(),
        line2: input.line2.clone(),
        city: input.city.clone(),
        pincode: input.pincode.clone(),
        lat: input.lat,
        lon: input.lon,
        is_default,
    }
}

/// Adds an address; a default one clears the others, in one transaction.
pub fn insert_address(user_id: &str, input: &AddressInput) -> Result<Address, CapError> {
    let tx = sql::begin()?;
    let existing = count_addresses(&tx, user_id)?;
    let is_default = crate::input::new_address_is_default(input.is_default, existing);
    if is_default {
        clear_default(&tx, user_id)?;
    }
    let address = address_from(new_id("adr"), input, is_default);
    let now = now_rfc3339();
    tx.execute(
        "INSERT INTO addresses (id, user_id, label, line1, line2, city, pincode, lat, lon,
                                is_default, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &params![
            address.id,
            user_id,
            address.label,
            address.line1,
            address.line2,
            address.city,
            address.pincode,
            address.lat,
            address.lon,
            address.is_default,
            now,
            now
        ],
    )?;
    tx.commit()?;
    Ok(address)
}

/// Replaces one of the user's addresses; `None` when it is not theirs.
pub fn replace_address(
    user_id: &str,
    id: &str,
    input: &AddressInput,
) -> Result<Option<Address>, CapError> {
    let tx = sql::begin()?;
    let Some(current) = tx_address_of(&tx, user_id, id)? else {
        return Ok(None);
    };
    let is_default =
        crate::input::replaced_address_is_default(input.is_default, current.is_default);
    if is_default {
        clear_default(&tx, user_id)?;
    }
    let address = address_from(current.id, input, is_default);
    tx.execute(
        "UPDATE addresses SET label = $3, line1 = $4, line2 = $5, city = $6, pincode = $7,
                lat = $8, lon = $9, is_default = $10, updated_at = $11
         WHERE id = $1 AND user_id = $2",
        &params![
            address.id,
            user_id,
            address.label,
            address.line1,
            address.line2,
            address.city,
            address.pincode,
            address.lat,
            address.lon,
            address.is_default,
            now_rfc3339()
        ],
    )?;
    tx.commit()?;
    Ok(Some(address))
}

/// Deletes one of the user's addresses; false when it is not theirs. Deleting the
/// default makes the newest remaining address the default.
pub fn delete_address(user_id: &str, id: &str) -> Result<bool, CapError> {
    let tx = sql::begin()?;
    let Some(current) = tx_address_of(&tx, user_id, id)? else {
        return Ok(false);
    };
    tx.execute(
        "DELETE FROM addresses WHERE id = $1 AND user_id = $2",
        &params![id, user_id],
    )?;
    if current.is_default {
        let next: Option<String> = tx
            .query(
                "SELECT id FROM addresses WHERE user_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                &params![user_id],
            )?
            .first()
            .map(|r| r.at::<String>(0))
            .transpose()?;
        if let Some(next) = next {
            tx.execute(
                "UPDATE addresses SET is_default = $2 WHERE id = $1",
                &params![next, true],
            )?;
        }
    }
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kirana_sdk::serde_json;

    /// `kirana_shop::auth::{User, Address}` are how delivery and orders parse the
    /// internal routes' answers: a field renamed or added here fails this test.
    #[test]
    fn internal_answers_are_the_shared_shapes() {
        let user = User {
            id: "usr_1".into(),
            email: Some("asha@example.com".into()),
            phone: None,
            phone_verified: false,
            name: "Asha".into(),
            role: "delivery_agent".into(),
            password_hash: Some("secret".into()),
            created_at: "2026-12-06T10:00:00Z".into(),
        };
        let json = serde_json::to_value(&user).unwrap();
        let seen: kirana_shop::auth::User = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&seen).unwrap(), json);
        assert!(json.get("password_hash").is_none());

        let address = Address {
            id: "adr_1".into(),
            label: "Home".into(),
            line1: "12 MG Road".into(),
            line2: None,
            city: "Bengaluru".into(),
            pincode: "560001".into(),
            lat: 12.9716,
            lon: 77.5946,
            is_default: true,
        };
        let json = serde_json::to_value(&address).unwrap();
        let seen: kirana_shop::auth::Address = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&seen).unwrap(), json);
    }
}
