//! `POST /api/v1/payments/webhook`: the provider's signed notifications, in Razorpay's
//! own event body or the flat sandbox body (see `rules::parse_webhook`).
//!
//! Order of checks: a configured `webhook_secret` (none → 503: never an HMAC under an
//! empty key), the `X-Razorpay-Signature` over the raw body (nothing is parsed before),
//! then the body, then replay detection by the body's SHA-256. A body is recorded as
//! handled only after it was handled, so one that failed on a transient error is
//! processed again when the provider retries.

use kirana_sdk::prelude::*;
use kirana_sdk::{sql, CapError};

use crate::db;
use crate::flow::{self, Refunded};
use crate::rules::{self, PaymentsConfig, Refusal, Status, Webhook};

fn invalid_signature(message: &str) -> ApiError {
    ApiError::new(400, "invalid_signature", message)
}

fn answer(status: &str) -> Response {
    Response::ok(&json!({ "status": status }))
}

pub fn handle(req: &Request) -> Result<Response, ApiError> {
    let config = PaymentsConfig::load();
    let secret = config.webhook_secret()?;
    let signature = req
        .header("x-razorpay-signature")
        .map(str::trim)
        .unwrap_or("");
    if signature.is_empty() {
        return Err(invalid_signature(
            "the X-Razorpay-Signature header is missing",
        ));
    }
    if !rules::verify(secret, req.body(), signature) {
        return Err(invalid_signature(
            "X-Razorpay-Signature does not match the body",
        ));
    }
    let webhook = rules::parse_webhook(req.body())?;
    let digest = rules::digest(req.body());
    if !claim(&digest, webhook.event(), webhook.provider_order_id())? {
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

/// Acts on the event: `processed` when it changed (or settled) a payment, `duplicate`
/// for a provider refund already on record, `ignored` when there was nothing to do
/// (unknown provider order or payment, an event this plugin does not act on, a failure
/// after a capture, a capture that contradicts the recorded one or the intent's amount,
/// a refund the payment cannot take).
fn process(webhook: &Webhook) -> Result<&'static str, ApiError> {
    match webhook {
        Webhook::Other(_) => Ok("ignored"),
        Webhook::Captured {
            provider_order_id,
            provider_payment_id,
            amount,
            currency,
        } => {
            let Some(p) = db::find_by_provider_order(provider_order_id)? else {
                return Ok("ignored");
            };
            let amount_differs = amount.is_some_and(|a| a != p.amount);
            let currency_differs = currency.as_deref().is_some_and(|c| c != p.currency);
            if amount_differs || currency_differs {
                // Not the intent's money: never mark the order paid on it.
                kirana_sdk::log::error(
                    &format!(
                        "webhook capture of {} ignored: the provider reports {} {}, the intent is {} {}",
                        p.id,
                        amount.map_or("?".into(), |a| a.to_string()),
                        currency.as_deref().unwrap_or("?"),
                        p.amount,
                        p.currency
                    ),
                    &[("provider_payment_id", provider_payment_id)],
                );
                return Ok("ignored");
            }
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
        Webhook::Refunded {
            provider_refund_id,
            provider_payment_id,
            amount,
            ..
        } => {
            let Some(p) = db::find_by_provider_payment(provider_payment_id)? else {
                return Ok("ignored");
            };
            match flow::provider_refund(&p.id, provider_refund_id, *amount)? {
                Refunded::Done(after) => {
                    if after.state() == Status::Refunded {
                        // Refunded in full: the order becomes payment_status refunded.
                        flow::settle_after_change(&after.order_id);
                    }
                    Ok("processed")
                }
                Refunded::Refused(Refusal::AlreadyRecorded) => Ok("duplicate"),
                Refunded::Refused(r) => {
                    // The provider gave back more than this payment holds (or a payment
                    // that never captured): nothing is recorded. Acknowledged, so the
                    // provider does not retry it for a day and then switch the webhook
                    // off; the error log is the operator's cue to reconcile.
                    kirana_sdk::log::error(
                        &format!(
                            "provider refund {provider_refund_id} of {amount} paise on {} refused: {}",
                            p.id,
                            r.into_error().message
                        ),
                        &[("provider_payment_id", provider_payment_id)],
                    );
                    Ok("ignored")
                }
            }
        }
    }
}
