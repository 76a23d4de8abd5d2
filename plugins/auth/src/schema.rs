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

pub fn tokens() -> Value {
    json!({
        "type": "object",
        "properties": {
            "user": {"type": "object"}, "access_token": {"type": "string"},
            "refresh_token": {"type": "string"}, "token_type": {"type": "string"},
            "expires_in": {"type": "integer"}
        }
    })
}
