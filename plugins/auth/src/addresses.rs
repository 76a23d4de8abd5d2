//! The customer's delivery addresses. At most one is the default; the default switch
//! happens in one transaction (see `db`). Another user's address is a plain 404.

use kirana_sdk::prelude::*;

use crate::db;
use crate::input::AddressBody;

/// `GET /api/v1/addresses` → `{items}`, the default first.
pub fn list(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let items = db::addresses_of(&caller.user_id)?;
    Ok(Response::ok(&json!({ "items": items })))
}

/// `POST /api/v1/addresses` → 201; the user's first address becomes the default
/// unless `is_default: false` is sent.
pub fn create(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let input = req.json::<AddressBody>()?.validate()?;
    let address = db::insert_address(&caller.user_id, &input)?;
    Ok(Response::created(&address))
}

/// `PUT /api/v1/addresses/{id}`: a full replace; an absent `is_default` keeps the flag.
pub fn replace(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let id: String = req.param("id")?;
    let input = req.json::<AddressBody>()?.validate()?;
    db::replace_address(&caller.user_id, &id, &input)?
        .map(|a| Response::ok(&a))
        .ok_or_else(|| ApiError::not_found("address"))
}

/// `DELETE /api/v1/addresses/{id}` → 204.
pub fn delete(req: &Request) -> Result<Response, ApiError> {
    let caller = req.user()?;
    let id: String = req.param("id")?;
    if db::delete_address(&caller.user_id, &id)? {
        Ok(Response::no_content())
    } else {
        Err(ApiError::not_found("address"))
    }
}
