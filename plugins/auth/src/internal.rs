//! Routes for other plugins only (`Access::Internal`, reached through `services::call`).
//! Their shapes are a contract: orders snapshots addresses, delivery reads agent names
//! and phones, notifications reads emails.

use kirana_sdk::prelude::*;

use crate::db;

/// `GET /internal/users/{id}` → the user `{id, email, phone, name, role, created_at}`.
pub fn user(req: &Request) -> Result<Response, ApiError> {
    let id: String = req.param("id")?;
    db::user_by_id(&id)?
        .map(|u| Response::ok(&u))
        .ok_or_else(|| ApiError::not_found("user"))
}

/// `GET /internal/users/{user_id}/addresses/{id}` → the address, 404 unless it is
/// that user's.
pub fn address(req: &Request) -> Result<Response, ApiError> {
    let user_id: String = req.param("user_id")?;
    let id: String = req.param("id")?;
    db::address_of(&user_id, &id)?
        .map(|a| Response::ok(&a))
        .ok_or_else(|| ApiError::not_found("address"))
}
