//! The signed-in user's in-app notifications.

use kirana_sdk::prelude::*;

use crate::db::{self, Notification};

/// `{items, unread_count, page, page_size, total}`.
#[derive(Serialize)]
struct Page {
    items: Vec<Notification>,
    unread_count: i64,
    page: u32,
    page_size: u32,
    total: i64,
}

/// The `unread` filter: `true` = unread only; `false` or absent = all.
fn unread_filter(req: &Request) -> Result<bool, ApiError> {
    match req.query("unread").map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::invalid_field("unread", "must be true or false")),
    }
}

/// `GET /api/v1/notifications`: newest first.
pub fn list(req: &Request) -> Result<Response, ApiError> {
    let user_id = req.user()?.user_id.clone();
    let paging = Paging::from_request(req)?;
    let unread_only = unread_filter(req)?;
    let (items, total) = db::list(&user_id, unread_only, paging)?;
    let unread_count = db::unread_count(&user_id)?;
    Ok(Response::ok(&Page {
        items,
        unread_count,
        page: paging.page,
        page_size: paging.page_size,
        total,
    }))
}

/// `POST /api/v1/notifications/{id}/read`: 204, also when it was read already; another
/// user's notification is 404 like an unknown one.
pub fn read(req: &Request) -> Result<Response, ApiError> {
    let user_id = req.user()?.user_id.clone();
    let id: String = req.param("id")?;
    if db::mark_read(&user_id, &id)? {
        Ok(Response::no_content())
    } else {
        Err(ApiError::not_found("notification"))
    }
}

/// `POST /api/v1/notifications/read-all`: 204.
pub fn read_all(req: &Request) -> Result<Response, ApiError> {
    let user_id = req.user()?.user_id.clone();
    db::mark_all_read(&user_id)?;
    Ok(Response::no_content())
}
