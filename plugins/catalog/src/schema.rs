//! The catalog's tables and the first-install seed. `migrate` runs at every load inside
//! the host's transaction, so everything here is idempotent.

use kirana_sdk::sql::{self, Value};
use kirana_sdk::{cap_error_message, config, new_id, now_rfc3339, CapError};

use crate::seed::{self, SeedProduct};

const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS categories (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    )",
    // `price`, `mrp`, `stock` are BIGINT paise/units; the CHECKs are a last line of
    // defence behind the handlers' validation and the conditional stock updates.
    "CREATE TABLE IF NOT EXISTS products (
        id TEXT PRIMARY KEY,
        sku TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        description TEXT,
        category_id TEXT NOT NULL,
        brand TEXT,
        unit TEXT NOT NULL,
        price BIGINT NOT NULL CHECK (price >= 1),
        mrp BIGINT NOT NULL CHECK (mrp >= price),
        stock BIGINT NOT NULL CHECK (stock >= 0),
        is_active BOOLEAN NOT NULL,
        image_url TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        created_us BIGINT NOT NULL,
        images TEXT
    )",
    "CREATE INDEX IF NOT EXISTS products_category_idx ON products (category_id)",
    "CREATE INDEX IF NOT EXISTS products_price_idx ON products (price)",
    "CREATE INDEX IF NOT EXISTS products_created_idx ON products (created_us)",
    // Lets the listing's plain COUNT read an index instead of every product row.
    "CREATE INDEX IF NOT EXISTS products_active_idx ON products (is_active)",
    // Stock taken for checkouts (see `holds`): status held | confirmed | released |
    // returned; `order_id` once an order confirmed (or cancelled) it.
    "CREATE TABLE IF NOT EXISTS stock_holds (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        order_id TEXT,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    // One row per product: the units the hold keeps off the shelf.
    "CREATE TABLE IF NOT EXISTS stock_hold_items (
        hold_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        quantity BIGINT NOT NULL CHECK (quantity >= 0),
        PRIMARY KEY (hold_id, product_id)
    )",
    // The admin list (newest first, by status) and the overdue sweep.
    "CREATE INDEX IF NOT EXISTS stock_holds_created_idx ON stock_holds (created_at)",
    "CREATE INDEX IF NOT EXISTS stock_holds_status_idx ON stock_holds (status, expires_at)",
];

/// Products inserted per statement while seeding.
const SEED_BATCH: usize = 25;

/// Creates the tables (products, categories, stock holds) and, when `[catalog] seed` is on (default) and no product exists
/// yet, loads the demo catalog of [`crate::seed`].
pub fn migrate(from: Option<&str>) -> Result<(), String> {
    run()
        .and_then(|()| crate::search_index::migrate(from))
        .map_err(|e| format!("catalog migration failed: {}", cap_error_message(&e)))?;
    // Pages cached before (by this version on an earlier start, say) may predate what
    // the migration changed.
    crate::listing::cache().invalidate();
    Ok(())
}

/// The default listing order (`sort=name`, see `listing::order_by`) as an index, so a
/// page is read in order and the scan stops at `LIMIT` instead of sorting every product.
fn name_order_index() -> String {
    use crate::listing::collate;
    let dialect = sql::dialect();
    format!(
        "CREATE INDEX IF NOT EXISTS products_name_order_idx ON products ({}, {}, {})",
        collate("(LOWER(name))", dialect),
        collate("name", dialect),
        collate("id", dialect)
    )
}

/// Adds `products.images` to a database made before it existed, and drops the seed's
/// old image URLs (a host that never served anything; the generated illustration
/// replaces them).
fn add_images_column() -> Result<(), CapError> {
    // Asked of the schema: a failing probe would spoil PostgreSQL's transaction.
    let probe = match sql::dialect() {
        sql::Dialect::Sqlite => {
            "SELECT COUNT(*) FROM pragma_table_info('products') WHERE name = 'images'"
        }
        sql::Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = 'products' AND column_name = 'images'"
        }
    };
    let present: i64 = sql::query(probe, &[])?.scalar()?;
    if present == 0 {
        sql::execute("ALTER TABLE products ADD COLUMN images TEXT", &[])?;
    }
    sql::execute(
        "UPDATE products SET image_url = NULL WHERE image_url LIKE $1",
        &kirana_sdk::params![format!("{}/%", seed::OLD_IMAGE_BASE)],
    )?;
    Ok(())
}

fn run() -> Result<(), CapError> {
    sql::execute_batch(TABLES)?;
    add_images_column()?;
    sql::execute(&name_order_index(), &[])?;
    if !config::get_or("seed", true) {
        return Ok(());
    }
    let products: i64 = sql::query("SELECT COUNT(*) AS n FROM products", &[])?.scalar()?;
    if products == 0 {
        load_seed()?;
    }
    Ok(())
}

fn load_seed() -> Result<(), CapError> {
    let now = now_rfc3339();
    let now_us = crate::model::now_micros();
    let mut category_ids: Vec<(&str, String)> = Vec::new();
    for c in seed::CATEGORIES {
        // A category an admin made with the same slug is reused, not duplicated.
        sql::execute(
            "INSERT INTO categories (id, name, slug, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slug) DO NOTHING",
            &kirana_sdk::params![new_id("cat"), c.name, c.slug, now.clone()],
        )?;
        let id: String = sql::query(
            "SELECT id FROM categories WHERE slug = $1",
            &kirana_sdk::params![c.slug],
        )?
        .scalar()?;
        category_ids.push((c.slug, id));
    }
    for chunk in seed::PRODUCTS.chunks(SEED_BATCH) {
        insert_products(chunk, &category_ids, &now, now_us)?;
    }
    Ok(())
}

fn insert_products(
    chunk: &[SeedProduct],
    category_ids: &[(&str, String)],
    now: &str,
    now_us: i64,
) -> Result<(), CapError> {
    let mut rows = Vec::with_capacity(chunk.len());
    let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 15);
    for p in chunk {
        let category_id = category_ids
            .iter()
            .find(|(slug, _)| *slug == p.category)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| CapError::Invalid(format!("seed category {} missing", p.category)))?;
        let base = params.len();
        rows.push(format!(
            "({})",
            (1..=15)
                .map(|i| format!("${}", base + i))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        params.extend(kirana_sdk::params![
            new_id("prd"),
            p.sku,
            p.name,
            p.description,
            category_id,
            p.brand,
            p.unit,
            p.price,
            p.mrp,
            p.stock,
            true,
            Value::Null,
            now,
            now,
            now_us
        ]);
    }
    let statement = format!(
        "INSERT INTO products (id, sku, name, description, category_id, brand, unit, price, \
         mrp, stock, is_active, image_url, created_at, updated_at, created_us) VALUES {} \
         ON CONFLICT (sku) DO NOTHING",
        rows.join(", ")
    );
    sql::execute(&statement, &params)?;
    Ok(())
}
