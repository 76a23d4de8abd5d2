//! The `auth` plugin's internal routes (docs/plugins/auth.md, "Internal routes"): users
//! for delivery and notifications, addresses for checkout.

use kirana_sdk::{ApiError, Method};
use serde::{Deserialize, Serialize};

use crate::call::{expect_found, send};

/// The plugin these routes belong to.
pub const PLUGIN: &str = "auth";

/// A user as auth answers it (never a password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// This account proved its current phone with a code.
    #[serde(default)]
    pub phone_verified: bool,
    pub name: String,
    /// One of [`crate::roles::ALL`].
    pub role: String,
    pub created_at: String,
}

/// A delivery address of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: String,
    pub label: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub pincode: String,
    pub lat: f64,
    pub lon: f64,
    pub is_default: bool,
}

/// `GET /internal/users/{id}`: `None` for an unknown user.
pub fn user(id: &str) -> Result<Option<User>, ApiError> {
    if !crate::plausible_id(id) {
        return Ok(None);
    }
    let reply = send::<()>(PLUGIN, Method::Get, &format!("/internal/users/{id}"), None)?;
    expect_found(reply, 200)
}

/// `GET /internal/users/{user_id}/addresses/{id}`: `None` unless that user has it.
pub fn address(user_id: &str, id: &str) -> Result<Option<Address>, ApiError> {
    if !crate::plausible_id(user_id) || !crate::plausible_id(id) {
        return Ok(None);
    }
    let path = format!("/internal/users/{user_id}/addresses/{id}");
    expect_found(send::<()>(PLUGIN, Method::Get, &path, None)?, 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::round_trip;

    #[test]
    fn user_and_address_shapes() {
        let u: User = round_trip(
            r#"{"id": "usr_1", "email": "asha@example.com", "phone": "+919812345678",
                "phone_verified": true, "name": "Asha", "role": "delivery_agent",
                "created_at": "2026-12-06T10:00:00Z"}"#,
        );
        assert!(crate::roles::ALL.contains(&u.role.as_str()));
        let a: Address = round_trip(
            r#"{"id": "adr_1", "label": "Home", "line1": "12 MG Road", "line2": null,
                "city": "Bengaluru", "pincode": "560001", "lat": 12.9716, "lon": 77.5946,
                "is_default": true}"#,
        );
        assert_eq!(a.pincode, "560001");
    }

    #[test]
    fn implausible_ids_make_no_call() {
        assert_eq!(user("a/b").ok(), Some(None));
        assert_eq!(address("usr_1", "x?y").ok(), Some(None));
    }
}
