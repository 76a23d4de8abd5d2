//! Admin user management and the first admin from configuration.

use kirana_sdk::prelude::*;
use kirana_sdk::{config, identity, log};

use crate::account::{hash_for, publish_created, taken};
use crate::db;
use crate::input::{self, AdminUserBody, NewUser};

/// `POST /api/v1/admin/users` → 201 user: how admins and delivery agents are made.
/// Publishes `user.created` like a signup (delivery makes agent profiles from it).
pub fn create_user(req: &Request) -> Result<Response, ApiError> {
    let new = req.json::<AdminUserBody>()?.validate()?;
    let hash = hash_for(&new)?;
    let user = db::insert_user(None, &new, &hash).map_err(taken)?;
    publish_created(&user)?;
    Ok(Response::created(&user))
}

/// `GET /api/v1/admin/users?role=&page=&page_size=`: newest first.
pub fn list_users(req: &Request) -> Result<Response, ApiError> {
    let paging = Paging::from_request(req)?;
    let role = input::role_filter(req.query("role"))?;
    let (users, total) = db::list_users(role.as_deref(), paging)?;
    Ok(Response::ok(&Paged::new(users, paging, total)))
}

fn setting(key: &str) -> Option<String> {
    config::get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Creates the admin named by `admin_email` / `admin_password` unless that email exists.
/// Runs in every `migrate`, so it is idempotent. A bad email is logged and skipped
/// rather than failing the plugin's load; an existing account is never touched (a
/// different role is only reported). No `user.created` is published from here:
/// migrate is not a request, and the first admin is not a customer.
pub fn ensure_first_admin() -> Result<(), String> {
    let (Some(raw_email), Some(password)) = (setting("admin_email"), config::get("admin_password"))
    else {
        return Ok(());
    };
    if password.is_empty() {
        return Ok(());
    }
    let email = input::normalize_email(&raw_email);
    if !kirana_sdk::Validator::new()
        .email("admin_email", &email)
        .is_empty()
    {
        log::warn(
            "admin_email is not a valid email; no first admin created",
            &[("email", &email)],
        );
        return Ok(());
    }
    let cap = |e| kirana_sdk::cap_error_message(&e);
    if let Some(existing) = db::user_by_email(&email).map_err(cap)? {
        if existing.role != "admin" {
            log::warn(
                "admin_email belongs to an account that is not an admin; left as it is",
                &[("email", &email), ("role", &existing.role)],
            );
        }
        return Ok(());
    }
    if password.chars().count() < input::PASSWORD_MIN {
        log::warn(
            "admin_password is shorter than the password policy allows",
            &[],
        );
    }
    let admin = NewUser {
        email: email.clone(),
        password: String::new(),
        name: setting("admin_name").unwrap_or_else(|| "Administrator".to_string()),
        phone: None,
        role: "admin".to_string(),
    };
    let hash = identity::hash_password(&password).map_err(cap)?;
    if db::insert_user_if_absent(&admin, &hash).map_err(cap)? {
        log::info(
            "created the first admin from configuration",
            &[("email", &email)],
        );
    }
    Ok(())
}
