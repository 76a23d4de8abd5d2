//! `POST /api/v1/payments/webhook`: the provider's signed notifications.
//!
//! Order of checks: the `X-Razorpay-Signature` over the raw body first (nothing is
//! parsed before), then the body, then replay detection by the body's SHA-256. A body
//! is recorded as handled only after it was handled, so one that failed on a transient
//! error is processed again when the provider retries.

use kirana_sdk::prelude::*;
use kirana_sdk::{sql, CapError};

use crate::db;
use crate::flow;
use crate::rules::{self, PaymentsConfig, Webhook};

fn invalid_signature(message: &str) -> ApiError {
    ApiError::new(400, "invalid_signature", message)
}

fn answer(status: &str) -> Response {
    Response::ok(&json!({ "status": status }))
}

pub fn handle(req: &Request) -> Result<Response, ApiError> {
    let config = PaymentsConfig::load();
    let signature = req
        .header("x-razorpay-signature")
        .map(str::trim)
        .unwrap_or("");
    if signature.is_empty() {
        return Err(invalid_signature(
            "the X-Razorpay-Signature header is missing",
        ));
    }
    if !rules::verify(&config.webhook_secret, req.body(), signature) {
        return Err(invalid_signature(
            "X-Razorpay-Signature does not match the body",
        ));
    }
    let webhook = rules::parse_webhook(req.body())?;
    let digest = rules::digest(req.body());
    let (event, provider_order_id) = match &webhook {
        Webhook::Captured {
            provider_order_id, ..
        }
        | Webhook::Failed {
            provider_order_id, ..
        } => (event_name(&webhook), Some(provider_order_id.clone())),
        Webhook::Other(e) => (e.clone(), None),
    };
    if !claim(&digest, &event, provider_order_id.as_deref())? {
        return Ok(answer("duplicate"));
    }
    match process(&webhook) {
        Ok(outcome) => {
            // The capture is committed and its events must go out: a failure to record
            // the outcome is logged, not returned (an error answer drops the events).
            if let Err(e) = sql::execute(
                "UPDATE webhook_events SET outcome = $1 WHERE digest = $2",
                &params![outcome, digest],
            ) {
                kirana_sdk::log::error(
                    &format!(
                        "recording webhook {digest} failed: {}",
                        kirana_sdk::cap_error_message(&e)
                    ),
                    &[],
                );
            }
            Ok(answer(outcome))
        }
        Err(e) => {
            // Not handled: forget the claim so the provider's retry is processed.
            if let Err(d) = sql::execute(
                "DELETE FROM webhook_events WHERE digest = $1",
                &params![digest],
            ) {
                kirana_sdk::log::error(
                    &format!(
                        "releasing webhook {digest} failed: {}",
                        kirana_sdk::cap_error_message(&d)
                    ),
                    &[],
                );
            }
            Err(e)
        }
    }
}

fn event_name(w: &Webhook) -> String {
    match w {
        Webhook::Captured { .. } => "payment.captured".into(),
        Webhook::Failed { .. } => "payment.failed".into(),
        Webhook::Other(e) => e.clone(),
    }
}

/// Records the body as seen; `false` when it was seen before (a replay). A claim that
/// never got an outcome belongs to a call that died; it is taken over after 120 s.
fn claim(digest: &str, event: &str, provider_order_id: Option<&str>) -> Result<bool, ApiError> {
    let abandoned = kirana_sdk::rfc3339(kirana_sdk::now() - std::time::Duration::from_secs(120));
    sql::execute(
        "DELETE FROM webhook_events WHERE digest = $1 AND outcome IS NULL AND received_at < $2",
        &params![digest, abandoned],
    )?;
    let inserted = sql::execute(
        "INSERT INTO webhook_events (digest, event, provider_order_id, received_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING",
        &params![digest, event, provider_order_id, now_rfc3339()],
    );
    match inserted {
        Ok(n) => Ok(n == 1),
        Err(CapError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Acts on the event: `processed` when it changed (or settled) a payment, `ignored`
/// when there was nothing to do (unknown provider order, an event this sandbox does not
/// act on, a failure after a capture, a capture that contradicts the recorded one).
fn process(webhook: &Webhook) -> Result<&'static str, ApiError> {
    match webhook {
        Webhook::Other(_) => Ok("ignored"),
        Webhook::Captured {
            provider_order_id,
            provider_payment_id,
        } => {
            let Some(p) = db::find_by_provider_order(provider_order_id)? else {
                return Ok("ignored");
            };
            match flow::capture(&p, provider_payment_id) {
                Ok(_) => Ok("processed"),
                Err(e) if e.code == "conflict" => {
                    kirana_sdk::log::warn(
                        &format!("webhook capture of {} ignored: {}", p.id, e.message),
                        &[("provider_payment_id", provider_payment_id)],
                    );
                    Ok("ignored")
                }
                Err(e) => Err(e),
            }
        }
        Webhook::Failed {
            provider_order_id,
            provider_payment_id,
        } => {
            let Some(p) = db::find_by_provider_order(provider_order_id)? else {
                return Ok("ignored");
            };
            Ok(if flow::fail(&p, provider_payment_id)? {
                "processed"
            } else {
                "ignored"
            })
        }
    }
}
