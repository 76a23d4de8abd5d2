//! What an event means for users: whom it is forwarded to live, which in-app
//! notifications it creates and which email it sends (pure; unit-tested natively).

use kirana_sdk::json;
use kirana_sdk::serde_json::{Map, Value as Json};

/// Every topic this plugin subscribes to.
pub const SUBSCRIPTIONS: &[&str] = &[
    "user.created",
    "order.created",
    "order.status_changed",
    "order.cancelled",
    "payment.captured",
    "payment.failed",
    "payment.refunded",
    "delivery.assigned",
    "delivery.status_changed",
    "delivery.location_updated",
];

/// Topics forwarded unchanged over SSE to the customer (`user_id`), event name = topic.
pub const FORWARDED: &[&str] = &[
    "order.created",
    "order.status_changed",
    "order.cancelled",
    "payment.captured",
    "payment.failed",
    "payment.refunded",
    "delivery.assigned",
    "delivery.status_changed",
    "delivery.location_updated",
];

/// The SSE event pushed with every new in-app notification.
pub const NOTIFICATION_CREATED: &str = "notification.created";

/// An in-app notification to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteSpec {
    pub user_id: String,
    /// The notification `type`; also the name of its template.
    pub kind: &'static str,
    pub vars: Map<String, Json>,
    pub data: Json,
}

/// An email to send through a message template.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSpec {
    pub to: String,
    pub template: &'static str,
    pub vars: Map<String, Json>,
}

/// The durable effects of one event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    pub notes: Vec<NoteSpec>,
    pub email: Option<EmailSpec>,
    /// Web Push messages to the customer's subscribed browsers (title and body from
    /// the notification template of `kind`).
    pub pushes: Vec<NoteSpec>,
}

/// The customer notifications that also go out as Web Push. Delivery picked up and
/// delivered reach the customer as the order's own status change (out for delivery,
/// delivered), so `delivery.status_changed` adds none.
pub const PUSHED: &[&str] = &[
    "order.status_changed",
    "payment.captured",
    "payment.refunded",
    "delivery.assigned",
];

/// A non-empty string field of the payload.
fn text<'a>(p: &'a Json, field: &str) -> Option<&'a str> {
    p.get(field)
        .and_then(Json::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn required<'a>(p: &'a Json, field: &str, topic: &str) -> Result<&'a str, String> {
    text(p, field).ok_or_else(|| format!("{topic} payload has no {field}"))
}

fn integer(p: &Json, field: &str, topic: &str) -> Result<i64, String> {
    p.get(field)
        .and_then(Json::as_i64)
        .ok_or_else(|| format!("{topic} payload has no integer {field}"))
}

/// Users a forwarded topic is pushed to: the customer, plus the agent for
/// `delivery.assigned`. Null or absent ids are skipped.
pub fn forward_targets(topic: &str, payload: &Json) -> Vec<String> {
    if !FORWARDED.contains(&topic) {
        return Vec::new();
    }
    let mut users: Vec<String> = Vec::new();
    let mut fields = vec!["user_id"];
    if topic == "delivery.assigned" {
        fields.push("agent_user_id");
    }
    for f in fields {
        if let Some(u) = text(payload, f) {
            if !users.iter().any(|x| x == u) {
                users.push(u.to_string());
            }
        }
    }
    users
}

/// How an order is named in texts: `#` and the last six characters of its id, upper case.
pub fn order_ref(order_id: &str) -> String {
    let chars: Vec<char> = order_id.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(6)..].iter().collect();
    format!("#{}", tail.to_uppercase())
}

/// Paise as money text: `₹1,234.50` for INR (Indian digit grouping), else `12.50 USD`.
pub fn money(paise: i64, currency: &str) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let abs = paise.unsigned_abs();
    let (whole, fraction) = (abs / 100, abs % 100);
    if !currency.eq_ignore_ascii_case("INR") {
        return format!("{sign}{whole}.{fraction:02} {}", currency.to_uppercase());
    }
    // 12,34,567: the last three digits, then groups of two.
    let digits = whole.to_string();
    let grouped = if digits.len() <= 3 {
        digits
    } else {
        let (head, last3) = digits.split_at(digits.len() - 3);
        let mut groups: Vec<&str> = Vec::new();
        let mut rest = head;
        while rest.len() > 2 {
            let (a, b) = rest.split_at(rest.len() - 2);
            groups.insert(0, b);
            rest = a;
        }
        groups.insert(0, rest);
        format!("{},{last3}", groups.join(","))
    };
    format!("{sign}₹{grouped}.{fraction:02}")
}

/// A status as words for titles: `out_for_delivery` → `out for delivery`.
pub fn status_label(status: &str) -> String {
    status.replace('_', " ")
}

fn vars(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

/// A display name for greetings: the name, else "there" ("Hi there").
fn greeting_name(p: &Json) -> String {
    text(p, "name").unwrap_or("there").to_string()
}

fn order_note(p: &Json, topic: &str, kind: &'static str, extra: Json) -> Result<NoteSpec, String> {
    let user_id = required(p, "user_id", topic)?;
    let order_id = required(p, "order_id", topic)?;
    let mut v = vars(extra);
    v.insert("order_ref".into(), Json::String(order_ref(order_id)));
    Ok(NoteSpec {
        user_id: user_id.to_string(),
        kind,
        vars: v,
        data: p.clone(),
    })
}

/// The notifications and email `topic` causes. `Err` means the payload is malformed
/// (it will never succeed: the caller logs and acknowledges it).
pub fn effects(topic: &str, p: &Json) -> Result<Effects, String> {
    if !p.is_object() {
        return Err(format!("{topic} payload is not a JSON object"));
    }
    let currency = text(p, "currency").unwrap_or("INR");
    let mut fx = Effects::default();
    match topic {
        "user.created" => {
            let user_id = required(p, "user_id", topic)?;
            let name = greeting_name(p);
            fx.notes.push(NoteSpec {
                user_id: user_id.to_string(),
                kind: "welcome",
                vars: vars(json!({ "name": name })),
                data: json!({ "user_id": user_id, "name": p.get("name").cloned().unwrap_or(Json::Null) }),
            });
            if let Some(email) = text(p, "email") {
                fx.email = Some(EmailSpec {
                    to: email.to_string(),
                    template: "welcome",
                    vars: vars(json!({ "name": name })),
                });
            }
        }
        "order.created" => {
            let total = integer(p, "total", topic)?;
            let item_count: i64 = p
                .get("items")
                .and_then(Json::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|i| i.get("quantity").and_then(Json::as_i64).unwrap_or(1))
                        .sum()
                })
                .unwrap_or(0);
            let method = text(p, "payment_method").unwrap_or("online");
            fx.notes.push(order_note(
                p,
                topic,
                "order.placed",
                json!({"total": money(total, currency), "item_count": item_count,
                       "payment_method": method}),
            )?);
        }
        "order.status_changed" => {
            let to = required(p, "to", topic)?;
            fx.notes.push(order_note(
                p,
                topic,
                "order.status_changed",
                json!({"to": to, "label": status_label(to)}),
            )?);
        }
        "payment.captured" => {
            let amount = integer(p, "amount", topic)?;
            fx.notes.push(order_note(
                p,
                topic,
                "payment.captured",
                json!({"amount": money(amount, currency)}),
            )?);
        }
        "payment.refunded" => {
            let amount = integer(p, "amount", topic)?;
            let full = p.get("full").and_then(Json::as_bool).unwrap_or(false);
            fx.notes.push(order_note(
                p,
                topic,
                "payment.refunded",
                json!({"amount": money(amount, currency), "full": full}),
            )?);
        }
        "delivery.assigned" => {
            let agent_name = text(p, "agent_name").unwrap_or("A delivery partner");
            fx.notes.push(order_note(
                p,
                topic,
                "delivery.assigned",
                json!({ "agent_name": agent_name }),
            )?);
            if let Some(agent) = text(p, "agent_user_id") {
                let mut note = order_note(p, topic, "delivery.new_assignment", json!({}))?;
                note.user_id = agent.to_string();
                fx.notes.push(note);
            }
        }
        // A push only: the failed payment is on the order page already.
        "payment.failed" => {
            fx.pushes
                .push(order_note(p, topic, "payment.failed", json!({}))?);
        }
        // Forwarded live only.
        _ => {}
    }
    let pushed = fx
        .notes
        .iter()
        .filter(|n| PUSHED.contains(&n.kind))
        .cloned();
    fx.pushes.splice(0..0, pushed);
    Ok(fx)
}

/// The key that makes one event create a notification once per user and type.
pub fn dedupe_key(event_id: &str, kind: &str, user_id: &str) -> String {
    format!("{event_id}|{kind}|{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_targets() {
        let p = json!({"order_id": "o1", "user_id": "u1", "from": "confirmed", "to": "preparing"});
        assert_eq!(forward_targets("order.status_changed", &p), ["u1"]);
        let p = json!({"order_id": "o1", "user_id": "u1", "agent_user_id": "a1"});
        assert_eq!(forward_targets("delivery.assigned", &p), ["u1", "a1"]);
        // Only the customer for other delivery events, nobody without one.
        assert_eq!(forward_targets("delivery.status_changed", &p), ["u1"]);
        let p = json!({"agent_user_id": "a1", "lat": 1.0, "lon": 2.0, "user_id": null});
        assert!(forward_targets("delivery.location_updated", &p).is_empty());
        // user.created is not forwarded.
        assert!(forward_targets("user.created", &json!({"user_id": "u1"})).is_empty());
    }

    #[test]
    fn money_and_refs() {
        assert_eq!(money(11500, "INR"), "₹115.00");
        assert_eq!(money(5, "INR"), "₹0.05");
        assert_eq!(money(123456789, "INR"), "₹12,34,567.89");
        assert_eq!(money(100000, "INR"), "₹1,000.00");
        assert_eq!(money(-2500, "INR"), "-₹25.00");
        assert_eq!(money(1250, "usd"), "12.50 USD");
        assert_eq!(order_ref("ord_0190abcdef12"), "#CDEF12");
        assert_eq!(order_ref("ord_0190abcdef123456"), "#123456");
        assert_eq!(order_ref("ab"), "#AB");
        assert_eq!(status_label("out_for_delivery"), "out for delivery");
    }

    #[test]
    fn signup_makes_a_welcome_and_an_email() {
        let p = json!({"user_id": "u1", "email": "a@b.in", "name": "Asha", "phone": null,
                       "role": "customer", "created_at": "2026-01-01T00:00:00Z"});
        let fx = effects("user.created", &p).unwrap();
        assert_eq!(fx.notes.len(), 1);
        assert_eq!(fx.notes[0].kind, "welcome");
        assert_eq!(fx.notes[0].user_id, "u1");
        assert_eq!(fx.notes[0].vars["name"], "Asha");
        let email = fx.email.unwrap();
        assert_eq!((email.to.as_str(), email.template), ("a@b.in", "welcome"));
        // A phone-only user: no email; no name: a neutral greeting.
        let fx = effects("user.created", &json!({"user_id": "u2", "email": null})).unwrap();
        assert!(fx.email.is_none());
        assert_eq!(fx.notes[0].vars["name"], "there");
    }

    #[test]
    fn order_events_carry_the_order_id() {
        let p = json!({"order_id": "ord_x1", "user_id": "u1", "status": "confirmed",
                       "payment_method": "cod", "payment_status": "cod", "total": 11500,
                       "items": [{"quantity": 2}, {"quantity": 1}]});
        let fx = effects("order.created", &p).unwrap();
        let n = &fx.notes[0];
        assert_eq!(n.kind, "order.placed");
        assert_eq!(n.data["order_id"], "ord_x1");
        assert_eq!(n.vars["item_count"], 3);
        assert_eq!(n.vars["total"], "₹115.00");
        assert_eq!(n.vars["order_ref"], "#ORD_X1");

        let p = json!({"order_id": "o1", "user_id": "u1", "from": "confirmed", "to": "out_for_delivery"});
        let fx = effects("order.status_changed", &p).unwrap();
        assert_eq!(fx.notes[0].vars["label"], "out for delivery");
        assert_eq!(fx.notes[0].data, p);
    }

    #[test]
    fn assignment_notifies_customer_and_agent() {
        let p = json!({"delivery_id": "d1", "order_id": "o1", "user_id": "u1",
                       "agent_id": "ag1", "agent_user_id": "a1", "agent_name": "Ravi"});
        let fx = effects("delivery.assigned", &p).unwrap();
        let kinds: Vec<(&str, &str)> = fx
            .notes
            .iter()
            .map(|n| (n.kind, n.user_id.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("delivery.assigned", "u1"),
                ("delivery.new_assignment", "a1")
            ]
        );
        assert_eq!(fx.notes[0].vars["agent_name"], "Ravi");
        // Only the customer's notification goes out as push.
        assert_eq!(fx.pushes.len(), 1);
        assert_eq!(fx.pushes[0].user_id, "u1");
    }

    #[test]
    fn payments_and_forward_only_topics() {
        let p = json!({"payment_id": "p1", "order_id": "o1", "user_id": "u1", "amount": 20000,
                       "refunded_amount": 20000, "full": true});
        let fx = effects("payment.refunded", &p).unwrap();
        assert_eq!(fx.notes[0].vars["full"], true);
        assert_eq!(fx.notes[0].vars["amount"], "₹200.00");
        assert_eq!(fx.pushes, fx.notes);
        let fx = effects("payment.failed", &p).unwrap();
        assert!(fx.notes.is_empty() && fx.email.is_none());
        assert_eq!(
            (fx.pushes[0].kind, fx.pushes[0].user_id.as_str()),
            ("payment.failed", "u1")
        );
        for t in [
            "order.cancelled",
            "delivery.status_changed",
            "delivery.location_updated",
        ] {
            assert_eq!(effects(t, &p).unwrap(), Effects::default(), "{t}");
        }
    }

    #[test]
    fn malformed_payloads_are_refused() {
        assert!(effects("order.created", &json!([1])).is_err());
        assert!(effects("order.created", &json!({"order_id": "o1", "user_id": "u1"})).is_err());
        assert!(effects("payment.captured", &json!({"order_id": "o1", "amount": 5})).is_err());
        assert!(effects("order.status_changed", &json!({"user_id": "u1", "to": "x"})).is_err());
        assert!(effects("user.created", &json!({"email": "a@b.in"})).is_err());
    }

    #[test]
    fn every_note_renders() {
        let cases = [
            (
                "user.created",
                json!({"user_id": "u1", "email": "a@b.in", "name": "Asha"}),
            ),
            (
                "order.created",
                json!({"order_id": "o1", "user_id": "u1", "total": 100, "payment_method": "cod", "items": []}),
            ),
            (
                "order.status_changed",
                json!({"order_id": "o1", "user_id": "u1", "to": "delivered"}),
            ),
            (
                "payment.captured",
                json!({"order_id": "o1", "user_id": "u1", "amount": 100, "currency": "INR"}),
            ),
            (
                "payment.refunded",
                json!({"order_id": "o1", "user_id": "u1", "amount": 50, "full": false}),
            ),
            (
                "delivery.assigned",
                json!({"order_id": "o1", "user_id": "u1", "agent_user_id": "a1", "agent_name": null}),
            ),
            (
                "payment.failed",
                json!({"order_id": "o1", "user_id": "u1", "payment_id": "p1"}),
            ),
        ];
        for (topic, p) in cases {
            let fx = effects(topic, &p).unwrap();
            assert!(!fx.notes.is_empty() || !fx.pushes.is_empty(), "{topic}");
            for n in fx.notes.into_iter().chain(fx.pushes) {
                let r = crate::templates::render_notification(n.kind, &n.vars)
                    .unwrap_or_else(|e| panic!("{topic} {}: {e}", n.kind));
                assert!(!r.subject.is_empty() && !r.body.is_empty());
            }
            if let Some(e) = fx.email {
                let globals = vars(json!({"reset_url": "https://x.example/r"}));
                crate::templates::render_message(e.template, &e.vars, &globals).unwrap();
            }
        }
    }
}
