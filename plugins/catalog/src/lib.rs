//! The `catalog` plugin: categories and products, product search, stock.
//!
//! Public routes list and show active products and categories; admin routes create,
//! replace, soft-delete products, change their stock and list stock holds; internal
//! routes (reachable only by other plugins through `services::call`) let the cart look
//! products up and orders take stock under a hold ([`holds`]) that its order confirms,
//! its cancellation returns and its expiry releases. A fresh install is seeded with a
//! demo catalog ([`seed`]). See docs/plugins/catalog.md.

use kirana_sdk::prelude::*;
use kirana_shop::access;

mod batch;
mod categories;
mod db;
mod fields;
pub mod hold_machine;
mod holds;
mod images;
mod input;
mod internal;
mod listing;
mod model;
mod products;
mod schema;
mod schemas;
pub mod search;
mod search_index;
pub mod seed;

pub struct Catalog;

impl Plugin for Catalog {
    const NAME: &'static str = "catalog";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        Router::new()
            .get("/api/v1/categories", Access::Public, categories::list)
            .summary("List categories with their count of active products")
            .response_schema(schemas::categories())
            .post("/api/v1/categories", access::ADMIN, categories::create)
            .summary("Create a category (slug derived from the name when absent)")
            .request_schema(schemas::category_input())
            .response_schema(schemas::category())
            .get("/api/v1/products", Access::Public, products::list)
            .summary(
                "List active products: paged; filters category, q, min_price, max_price, \
                 in_stock; sort relevance|price_asc|price_desc|name|newest",
            )
            .response_schema(schemas::paged_products())
            .get(
                "/api/v1/products/suggest",
                Access::Public,
                search_index::suggest,
            )
            .summary("Up to 8 products whose name completes q (search-as-you-type)")
            .response_schema(schemas::suggestions())
            .post("/api/v1/products", access::ADMIN, products::create)
            .summary("Create a product")
            .request_schema(schemas::product_input())
            .response_schema(schemas::product())
            .get("/api/v1/products/{id}", Access::Public, products::get)
            .summary("Show an active product")
            .response_schema(schemas::product())
            .put("/api/v1/products/{id}", access::ADMIN, products::update)
            .summary("Replace a product (full body)")
            .request_schema(schemas::product_input())
            .response_schema(schemas::product())
            .delete("/api/v1/products/{id}", access::ADMIN, products::delete)
            .summary("Soft-delete a product (it becomes inactive and disappears)")
            .post(
                "/api/v1/products/{id}/images",
                access::ADMIN,
                images::upload,
            )
            .summary("Upload a JPEG, PNG or WebP photo (≤ 5 MB, raw body); 201 product")
            .raw_body(&[])
            .response_schema(schemas::product())
            .delete(
                "/api/v1/products/{id}/images/{image_id}",
                access::ADMIN,
                images::delete,
            )
            .summary("Delete a product image and its files")
            .get(
                "/api/v1/products/{id}/images/{image_id}/{size}",
                Access::Public,
                images::serve,
            )
            .summary("A product image: size large (≤ 800 px) or thumb (≤ 200 px)")
            .file_response(&["image/jpeg", "image/svg+xml"])
            .patch(
                "/api/v1/products/{id}/stock",
                access::ADMIN,
                products::patch_stock,
            )
            .summary("Change a product's stock by {delta} or to {set}, atomically")
            .request_schema(schemas::stock_change())
            .response_schema(schemas::product())
            .post(
                "/internal/products/lookup",
                Access::Internal,
                internal::lookup,
            )
            .summary("Products by id, active or not (for cart and orders)")
            .request_schema(schemas::lookup_input())
            .response_schema(schemas::lookup_output())
            .post("/internal/stock/holds", Access::Internal, holds::create)
            .summary("Take stock for a checkout under a hold that expires (for orders)")
            .request_schema(schemas::lines_input())
            .response_schema(schemas::hold_output())
            .post(
                "/internal/stock/holds/{id}/release",
                Access::Internal,
                holds::release,
            )
            .summary("Give a held hold's units back (a checkout that failed)")
            .response_schema(schemas::hold_status())
            .get("/api/v1/admin/stock-holds", access::ADMIN, holds::list)
            .summary("Stock holds, newest first: paged; filter status")
            .response_schema(schemas::paged_holds())
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .sql()
            .kv()
            .publish(&[holds::EXPIRED])
            .call(&["orders"])
    }

    fn subscriptions() -> Vec<String> {
        holds::SUBSCRIPTIONS
            .iter()
            .map(|(topic, _)| topic.to_string())
            .collect()
    }

    fn on_event(event: &Event) -> Result<(), String> {
        holds::on_event(event)
    }

    fn migrate(from: Option<&str>) -> Result<(), String> {
        schema::migrate(from)
    }
}

kirana_sdk::export_plugin!(Catalog);
