//! The `auth` plugin: users, passwords, sessions, profiles, delivery addresses and the
//! internal user/address lookups other plugins rely on.
//!
//! Module map: `input` (request bodies and pure validation), `db` (schema and SQL),
//! `attempts` (brute-force limits that count before they compare), `lockout`
//! (failed-login counter), `account` (signup, login, password change, tokens, sessions,
//! me), `addresses`, `admin` (admin users and the bootstrap admin), `internal` (service
//! routes), `otp` (SMS codes: phone login and proving a phone), `reset` (password
//! recovery by email), `notify` (messages through the notifications plugin), `oidc`
//! (sign-in with OpenID Connect providers and the linked identities).

use kirana_sdk::prelude::*;
use kirana_shop::access;

mod account;
mod addresses;
mod admin;
mod attempts;
mod db;
mod input;
mod internal;
mod lifetimes;
mod lockout;
mod notify;
mod oidc;
mod otp;
mod reset;
mod schema;

pub struct Auth;

impl Plugin for Auth {
    const NAME: &'static str = "auth";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn router() -> Router {
        let any = Access::Authenticated;
        Router::new()
            .post("/api/v1/auth/signup", Access::Public, account::signup)
            .summary("Create a customer account and sign in")
            .request_schema(schema::signup())
            .response_schema(schema::tokens())
            .post("/api/v1/auth/login", Access::Public, account::login)
            .summary("Sign in with email and password")
            .request_schema(schema::login())
            .response_schema(schema::tokens())
            .post("/api/v1/auth/otp/request", Access::Public, otp::request)
            .summary("Sends a 6-digit login code by SMS")
            .request_schema(schema::otp_request())
            .response_schema(
                json!({"type": "object", "properties": {"expires_in": {"type": "integer"}}}),
            )
            .post("/api/v1/auth/otp/verify", Access::Public, otp::verify)
            .summary("Logs in with an SMS code (a new phone becomes a customer)")
            .request_schema(schema::otp_verify())
            .response_schema(schema::tokens())
            .post(
                "/api/v1/auth/password/forgot",
                Access::Public,
                reset::forgot,
            )
            .summary("Emails a password reset token if the account exists (always 202)")
            .request_schema(schema::forgot())
            .response_schema(
                json!({"type": "object", "properties": {"message": {"type": "string"}}}),
            )
            .post("/api/v1/auth/password/reset", Access::Public, reset::reset)
            .summary("Sets a new password with a reset token; ends every session")
            .request_schema(schema::reset())
            .post(
                "/api/v1/auth/password",
                any.clone(),
                account::change_password,
            )
            .summary("Change the caller's password; ends every other session")
            .request_schema(schema::password_change())
            .post("/api/v1/auth/refresh", Access::Public, account::refresh)
            .summary("Rotate a refresh token for a new token pair")
            .request_schema(schema::refresh())
            .response_schema(schema::tokens())
            .post("/api/v1/auth/logout", any.clone(), account::logout)
            .summary("End this session")
            .post("/api/v1/auth/logout-all", any.clone(), account::logout_all)
            .summary("End every session of the caller")
            .get("/api/v1/auth/sessions", any.clone(), account::sessions)
            .summary("The caller's live sessions")
            .response_schema(schema::sessions())
            .delete(
                "/api/v1/auth/sessions/{id}",
                any.clone(),
                account::delete_session,
            )
            .summary("End one of the caller's sessions")
            .get(
                "/api/v1/auth/oidc/providers",
                Access::Public,
                oidc::providers,
            )
            .summary("The sign-in providers this shop offers (for its sign-in buttons)")
            .response_schema(schema::providers())
            .get(
                "/api/v1/auth/oidc/{provider}/start",
                Access::Public,
                oidc::start,
            )
            .summary("Sign in with an OpenID Connect provider: 302 to its login page")
            .get(
                "/api/v1/auth/oidc/{provider}/callback",
                Access::Public,
                oidc::callback,
            )
            .summary("Where the provider sends the browser back: the token pair")
            .response_schema(schema::tokens())
            .get("/api/v1/auth/identities", any.clone(), oidc::list)
            .summary("The providers the caller signs in with")
            .response_schema(schema::identities())
            .delete("/api/v1/auth/identities/{id}", any.clone(), oidc::unlink)
            .summary("Unlink a provider (not the account's last way to sign in)")
            .get("/api/v1/auth/me", any.clone(), account::me)
            .summary("The caller's profile")
            .response_schema(schema::user())
            .patch("/api/v1/auth/me", any.clone(), account::patch_me)
            .summary("Change the caller's name or phone")
            .request_schema(schema::profile_patch())
            .response_schema(schema::user())
            .post(
                "/api/v1/auth/me/phone/request",
                any.clone(),
                otp::prove_request,
            )
            .summary("Sends a code by SMS to the caller's phone, to prove it")
            .response_schema(
                json!({"type": "object", "properties": {"expires_in": {"type": "integer"}}}),
            )
            .post("/api/v1/auth/me/phone/verify", any, otp::prove_verify)
            .summary("Proves the caller's phone with the code; then it logs in by SMS")
            .request_schema(schema::phone_proof())
            .response_schema(schema::user())
            .get("/api/v1/addresses", access::CUSTOMER, addresses::list)
            .summary("The customer's addresses")
            .response_schema(schema::address_list())
            .post("/api/v1/addresses", access::CUSTOMER, addresses::create)
            .summary("Add an address")
            .request_schema(schema::address())
            .response_schema(schema::stored_address())
            .put(
                "/api/v1/addresses/{id}",
                access::CUSTOMER,
                addresses::replace,
            )
            .summary("Replace an address")
            .request_schema(schema::address())
            .response_schema(schema::stored_address())
            .delete(
                "/api/v1/addresses/{id}",
                access::CUSTOMER,
                addresses::delete,
            )
            .summary("Delete an address")
            .post("/api/v1/admin/users", access::ADMIN, admin::create_user)
            .summary("Create a user with any role")
            .request_schema(schema::admin_user())
            .response_schema(schema::user())
            .get("/api/v1/admin/users", access::ADMIN, admin::list_users)
            .summary("All users, newest first, filter role")
            .response_schema(schema::user_page())
            .get("/internal/users/{id}", Access::Internal, internal::user)
            .summary("A user, for other plugins")
            .get(
                "/internal/users/{user_id}/addresses/{id}",
                Access::Internal,
                internal::address,
            )
            .summary("One of a user's addresses, for other plugins")
    }

    fn capabilities() -> Capabilities {
        Capabilities::new()
            .sql()
            .identity()
            .call(&["notifications"])
            .publish(&["user.created"])
    }

    fn migrate(_from: Option<&str>) -> Result<(), String> {
        db::migrate().map_err(|e| kirana_sdk::cap_error_message(&e))?;
        admin::ensure_bootstrap_admin()
    }
}

kirana_sdk::export_plugin!(Auth);
