//! Web Push: the browser's subscription routes (stored by the host, which also holds
//! the VAPID keys and does the encryption and delivery) and the push message an
//! event's customer notification becomes.

use kirana_sdk::mail;
use kirana_sdk::prelude::*;
use kirana_sdk::serde_json::{self, Value as Json};
use kirana_sdk::CapError;

/// `GET /api/v1/notifications/push/key` (public): `{vapid_public_key}`.
pub fn key(_req: &Request) -> Result<Response, ApiError> {
    let key = mail::push_public_key()?;
    Ok(Response::ok(&json!({ "vapid_public_key": key })))
}

/// A text field of a JSON object: `Ok(None)` when absent, an error when not a string.
fn text_field<'a>(obj: &'a Json, field: &str, name: &str, v: &mut Validator) -> Option<&'a str> {
    match obj.get(field) {
        Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim()),
        Some(Json::String(_)) | None | Some(Json::Null) => {
            v.push(name, "is required");
            None
        }
        Some(_) => {
            v.push(name, "must be a string");
            None
        }
    }
}

/// The field a host refusal of a subscription is about (its message starts with it).
fn refused(e: CapError) -> ApiError {
    match e {
        CapError::Invalid(m) => {
            let field = match m.split(':').next().unwrap_or("") {
                "p256dh" => "keys.p256dh",
                "auth" => "keys.auth",
                _ => "endpoint",
            };
            let message = m.split_once(": ").map_or(m.as_str(), |(_, rest)| rest);
            ApiError::invalid_field(field, message)
        }
        other => other.into(),
    }
}

/// `POST /api/v1/notifications/push/subscriptions {endpoint, keys:{p256dh, auth}}`
/// (what `PushSubscription.toJSON()` gives): 201 `{id}`, or 200 with the same id when
/// the caller had this endpoint already.
pub fn subscribe(req: &Request) -> Result<Response, ApiError> {
    let user_id = req.user()?.user_id.clone();
    let body: Json = req.json()?;
    if !body.is_object() {
        return Err(ApiError::invalid_field(
            "body",
            "must be a JSON object {endpoint, keys: {p256dh, auth}}",
        ));
    }
    let mut v = Validator::new();
    let endpoint = text_field(&body, "endpoint", "endpoint", &mut v);
    let (p256dh, auth) = match body.get("keys") {
        Some(keys @ Json::Object(_)) => (
            text_field(keys, "p256dh", "keys.p256dh", &mut v),
            text_field(keys, "auth", "keys.auth", &mut v),
        ),
        None | Some(Json::Null) => {
            v.push("keys", "is required: {p256dh, auth}");
            (None, None)
        }
        Some(_) => {
            v.push("keys", "must be an object {p256dh, auth}");
            (None, None)
        }
    };
    v.finish()?;
    let (Some(endpoint), Some(p256dh), Some(auth)) = (endpoint, p256dh, auth) else {
        return Err(ApiError::invalid_field(
            "keys",
            "is required: {p256dh, auth}",
        ));
    };
    let stored = mail::push_subscribe(&user_id, endpoint, p256dh, auth).map_err(refused)?;
    let body = json!({ "id": stored.id });
    Ok(if stored.created {
        Response::created(&body)
    } else {
        Response::ok(&body)
    })
}

/// `DELETE /api/v1/notifications/push/subscriptions/{id}`: 204; another user's
/// subscription is 404 like an unknown one.
pub fn unsubscribe(req: &Request) -> Result<Response, ApiError> {
    let user_id = req.user()?.user_id.clone();
    let id: String = req.param("id")?;
    if mail::push_unsubscribe(&user_id, &id)? {
        Ok(Response::no_content())
    } else {
        Err(ApiError::not_found("push subscription"))
    }
}

/// What the service worker receives: `{title, body, data:{type, order_id, status?}}`.
/// `data` carries ids and the status only, never anything the customer did not see
/// in the notification itself.
pub fn payload(kind: &str, title: &str, body: &str, event: &Json) -> String {
    let mut data = serde_json::Map::new();
    data.insert("type".into(), Json::String(kind.to_string()));
    for field in ["order_id", "delivery_id", "payment_id"] {
        if let Some(s) = event.get(field).and_then(Json::as_str) {
            data.insert(field.into(), Json::String(s.to_string()));
        }
    }
    if let Some(status) = event.get("to").and_then(Json::as_str) {
        data.insert("status".into(), Json::String(status.to_string()));
    }
    json!({ "title": title, "body": body, "data": data }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_the_status_and_ids_only() {
        let event = json!({"order_id": "ord_1", "user_id": "u1", "from": "confirmed",
                           "to": "out_for_delivery", "secret": "x"});
        let p: Json = serde_json::from_str(&payload(
            "order.status_changed",
            "Order out for delivery",
            "Your order #ORD_1 is on its way.",
            &event,
        ))
        .unwrap();
        assert_eq!(p["title"], "Order out for delivery");
        assert_eq!(p["data"]["status"], "out_for_delivery");
        assert_eq!(p["data"]["order_id"], "ord_1");
        assert_eq!(p["data"]["type"], "order.status_changed");
        assert!(p["data"].get("secret").is_none() && p["data"].get("user_id").is_none());
    }

    #[test]
    fn host_refusals_name_the_field() {
        let e = refused(CapError::Invalid("p256dh: must be base64url".into()));
        assert_eq!((e.status, e.code), (400, "validation_failed"));
        assert_eq!(e.message, "keys.p256dh: must be base64url");
        let e = refused(CapError::Invalid(
            "endpoint: must be an https:// URL".into(),
        ));
        assert_eq!(e.message, "endpoint: must be an https:// URL");
    }
}
