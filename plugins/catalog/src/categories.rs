//! `GET /api/v1/categories` and `POST /api/v1/categories`.

use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{Map, Value};
use kirana_sdk::sql;
use kirana_sdk::CapError;

use crate::input::parse_category;
use crate::listing::collate;
use crate::model::Category;

/// Every category with its count of active products, by name (not paged: a store has
/// tens of categories, not thousands).
pub fn list(_req: &Request) -> Result<Response, ApiError> {
    let dialect = sql::dialect();
    let statement = format!(
        "SELECT c.id, c.name, c.slug, COUNT(p.id) AS product_count FROM categories c \
         LEFT JOIN products p ON p.category_id = c.id AND p.is_active \
         GROUP BY c.id, c.name, c.slug ORDER BY {}, {}",
        collate("LOWER(c.name)", dialect),
        collate("c.slug", dialect)
    );
    let items: Vec<Category> = sql::query_as(&statement, &[])?;
    Ok(Response::ok(&json!({ "items": items })))
}

/// Creates a category; the slug comes from the name when not given. 409 when taken.
pub fn create(req: &Request) -> Result<Response, ApiError> {
    let body: Map<String, Value> = req.json()?;
    let input = parse_category(&body)?;
    let taken = || {
        ApiError::already_exists(format!("a category with slug {} exists", input.slug))
            .with_details(json!({ "field": "slug", "slug": input.slug }))
    };
    let existing: i64 = sql::query(
        "SELECT COUNT(*) AS n FROM categories WHERE slug = $1",
        &params![input.slug],
    )?
    .scalar()?;
    if existing > 0 {
        return Err(taken());
    }
    let id = new_id("cat");
    match sql::execute(
        "INSERT INTO categories (id, name, slug, created_at) VALUES ($1, $2, $3, $4)",
        &params![id, input.name, input.slug, now_rfc3339()],
    ) {
        Ok(_) => {}
        // Lost a race with another create of the same slug.
        Err(CapError::Conflict(_)) => return Err(taken()),
        Err(e) => return Err(e.into()),
    }
    crate::listing::cache().invalidate();
    Ok(Response::created(&Category {
        id,
        name: input.name,
        slug: input.slug,
        product_count: 0,
    }))
}
