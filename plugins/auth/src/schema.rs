//! JSON Schemas of the request bodies, for `/openapi.json`. Validation itself is in
//! `input`; these only describe it.

use kirana_sdk::json;
use kirana_sdk::serde_json::Value;

fn email() -> Value {
    json!({"type": "string", "format": "email", "maxLength": 254})
}

fn password() -> Value {
    json!({"type": "string", "minLength": 8, "maxLength": 128})
}

fn name() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 100})
}

fn phone() -> Value {
    json!({"type": ["string", "null"], "pattern": "^\\+[1-9][0-9]{7,14}$"})
}

pub fn signup() -> Value {
    json!({
        "type": "object",
        "required": ["email", "password", "name"],
        "properties": {"email": email(), "password": password(), "name": name(), "phone": phone()}
    })
}

pub fn login() -> Value {
    json!({
        "type": "object",
        "required": ["email", "password"],
        "properties": {"email": {"type": "string"}, "password": {"type": "string"}}
    })
}

pub fn refresh() -> Value {
    json!({
        "type": "object",
        "required": ["refresh_token"],
        "properties": {"refresh_token": {"type": "string"}}
    })
}

pub fn profile_patch() -> Value {
    json!({
        "type": "object",
        "properties": {"name": name(), "phone": phone()}
    })
}

pub fn admin_user() -> Value {
    json!({
        "type": "object",
        "required": ["email", "password", "name", "role"],
        "properties": {
            "email": email(), "password": password(), "name": name(), "phone": phone(),
            "role": {"type": "string", "enum": ["customer", "admin", "delivery_agent"]}
        }
    })
}

pub fn address() -> Value {
    json!({
        "type": "object",
        "required": ["label", "line1", "city", "pincode", "lat", "lon"],
        "properties": {
            "label": {"type": "string", "minLength": 1, "maxLength": 50},
            "line1": {"type": "string", "minLength": 1, "maxLength": 200},
            "line2": {"type": ["string", "null"], "maxLength": 200},
            "city": {"type": "string", "minLength": 1, "maxLength": 100},
            "pincode": {"type": "string", "pattern": "^[0-9]{6}$"},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lon": {"type": "number", "minimum": -180, "maximum": 180},
            "is_default": {"type": "boolean"}
        }
    })
}

fn e164() -> Value {
    json!({"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"})
}

pub fn otp_request() -> Value {
    json!({"type": "object", "required": ["phone"], "properties": {"phone": e164()}})
}

pub fn otp_verify() -> Value {
    json!({
        "type": "object",
        "required": ["phone", "code"],
        "properties": {"phone": e164(), "code": {"type": "string", "pattern": "^[0-9]{6}$"}}
    })
}

pub fn forgot() -> Value {
    json!({"type": "object", "required": ["email"], "properties": {"email": email()}})
}

pub fn reset() -> Value {
    json!({
        "type": "object",
        "required": ["token", "new_password"],
        "properties": {"token": {"type": "string"}, "new_password": password()}
    })
}

pub fn password_change() -> Value {
    json!({
        "type": "object",
        "required": ["current_password", "new_password"],
        "properties": {
            "current_password": {"type": "string", "minLength": 1},
            "new_password": password()
        }
    })
}

pub fn phone_proof() -> Value {
    json!({
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}}
    })
}

/// A user as every route answers it.
pub fn user() -> Value {
    let text_or_null = json!({"type": ["string", "null"]});
    json!({
        "type": "object",
        "required": ["id", "email", "phone", "phone_verified", "name", "role", "created_at"],
        "properties": {
            "id": {"type": "string"}, "email": text_or_null, "phone": text_or_null,
            "phone_verified": {"type": "boolean"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["customer", "admin", "delivery_agent"]},
            "created_at": {"type": "string", "format": "date-time"}
        }
    })
}

pub fn user_page() -> Value {
    json!({
        "type": "object",
        "required": ["items", "page", "page_size", "total"],
        "properties": {
            "items": {"type": "array", "items": user()},
            "page": {"type": "integer"}, "page_size": {"type": "integer"}, "total": {"type": "integer"}
        }
    })
}

pub fn sessions() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "created_at", "last_used_at", "user_agent", "current"],
            "properties": {
                "id": {"type": "string"}, "created_at": {"type": "string"},
                "last_used_at": {"type": "string"}, "user_agent": {"type": ["string", "null"]},
                "current": {"type": "boolean"}
            }
        }}}
    })
}

/// `GET /auth/identities`.
pub fn identities() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "provider", "subject", "email", "linked_at"],
            "properties": {
                "id": {"type": "string"}, "provider": {"type": "string"},
                "subject": {"type": "string"}, "email": {"type": ["string", "null"]},
                "linked_at": {"type": "string"}
            }
        }}}
    })
}

/// An address as stored (the request's fields plus `id`).
pub fn stored_address() -> Value {
    let mut a = address();
    a["properties"]["id"] = json!({"type": "string"});
    a["required"] = json!([
        "id",
        "label",
        "line1",
        "line2",
        "city",
        "pincode",
        "lat",
        "lon",
        "is_default"
    ]);
    a
}

pub fn address_list() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": stored_address()}}
    })
}

pub fn tokens() -> Value {
    json!({
        "type": "object",
        "required": ["user", "access_token", "refresh_token", "token_type", "expires_in"],
        "properties": {
            "user": user(), "access_token": {"type": "string"},
            "refresh_token": {"type": "string"}, "token_type": {"type": "string"},
            "expires_in": {"type": "integer"}
        }
    })
}

/// The sign-in providers a shop offers.
pub fn providers() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "start_url"],
            "properties": {"name": {"type": "string"}, "start_url": {"type": "string"}}
        }}}
    })
}
