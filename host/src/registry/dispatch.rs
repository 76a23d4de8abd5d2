//! The event dispatcher: claims due deliveries from the bus, runs each subscriber's
//! `on-event` (skipping events its inbox says it handled), commits the handler's work
//! with the inbox row, and records the outcome with retries and dead letters.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{watch, Semaphore};

use super::effects::{self as outbox, Finished, Outcome};
use super::Platform;
use crate::bindings::wit;
use crate::capabilities::events::{StoredEvent, BATCH};
use crate::core::{CallCtx, Op, OpResult};
use crate::storage::now_ms;

/// Delivers due events until `stop` turns true; deliveries in progress finish first.
pub async fn run_dispatcher(platform: Arc<Platform>, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(platform.events.config.poll_ms.max(10));
    let slots = usize::try_from(BATCH).unwrap_or(32);
    // Deliveries run side by side; a slow subscriber holds one slot, not the loop.
    let permits = Arc::new(Semaphore::new(slots));
    loop {
        if *stop.borrow() {
            break;
        }
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                p = permits.acquire() => drop(p),
            }
            continue;
        }
        let claimed = match platform.events.claim(free).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "claiming event deliveries failed");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = platform.events.wake.notified() => {},
                _ = tokio::time::sleep(poll) => {},
            }
            continue;
        }
        let ids: Vec<&str> = claimed.iter().map(|(id, _, _)| id.as_str()).collect();
        let stored = match platform.events.load_events(&ids).await {
            Ok(s) => s,
            Err(e) => {
                // The leases expire and the deliveries are claimed again.
                tracing::error!(error = %e, "loading claimed events failed");
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        for (event_id, subscriber, attempts) in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let p = platform.clone();
            // An event with several subscribers in this round is cloned for each.
            let event = stored.get(&event_id).cloned();
            tokio::spawn(async move {
                if let Err(e) = deliver(&p, &event_id, &subscriber, attempts, event).await {
                    tracing::error!(event_id, subscriber, error = %e, "recording an event delivery failed");
                }
                drop(permit);
            });
        }
    }
    // Let deliveries in progress record their outcome before the host stops.
    let _ = permits
        .acquire_many(u32::try_from(slots).unwrap_or(32))
        .await;
}

async fn deliver(
    platform: &Arc<Platform>,
    event_id: &str,
    subscriber: &str,
    attempts: u32,
    stored: Option<StoredEvent>,
) -> Result<()> {
    let bus = &platform.events;
    let Some(plugin) = platform.registry.get(subscriber) else {
        // Not loaded (disabled or removed): keep it waiting without spending an attempt.
        let later = now_ms() + i64::try_from(bus.config.poll_ms * 4).unwrap_or(1000);
        return bus
            .finish(
                event_id,
                subscriber,
                "pending",
                attempts,
                later,
                Some("subscriber not loaded"),
            )
            .await;
    };
    let Some(StoredEvent {
        topic,
        payload,
        source,
    }) = stored
    else {
        return bus
            .finish(
                event_id,
                subscriber,
                "dead",
                attempts,
                now_ms(),
                Some("event row missing"),
            )
            .await;
    };
    let attempt = attempts + 1;
    let labels = crate::metrics::DeliveryLabels {
        subscriber: subscriber.to_string(),
        topic: topic.clone(),
    };
    let event = wit::Event {
        id: event_id.to_string(),
        topic,
        payload: payload.into_bytes(),
        attempt,
        source,
    };
    // Handled before (its effects committed, then the host stopped before marking
    // the delivery): done, without running it again.
    match outbox::handled(&plugin.ctx.db, event_id).await {
        Ok(true) => {
            platform.metrics.events_duplicates.inc();
            return bus
                .finish(event_id, subscriber, "done", attempt, now_ms(), None)
                .await;
        }
        Ok(false) => {}
        Err(e) => {
            let later = now_ms() + i64::try_from(bus.backoff(1).as_millis()).unwrap_or(1000);
            let why = format!(
                "reading the inbox failed: {}",
                crate::capabilities::error_text(&e)
            );
            return bus
                .finish(event_id, subscriber, "pending", attempts, later, Some(&why))
                .await;
        }
    }
    let call = CallCtx::new(format!("evt:{event_id}"), None, 0, plugin.ctx.timeout);
    let error = match platform.run(&plugin, call, Op::OnEvent(event)).await {
        Ok((OpResult::Event(Ok(())), mut call)) => {
            let outcome = Outcome::Commit {
                publish: true,
                handled: Some(event_id),
            };
            match outbox::finish(platform, &plugin.ctx, &mut call, outcome).await {
                Ok(done) => {
                    if done == Finished::Duplicate {
                        platform.metrics.events_duplicates.inc();
                    }
                    return bus
                        .finish(event_id, subscriber, "done", attempt, now_ms(), None)
                        .await;
                }
                Err(e) => format!(
                    "committing the handler's work failed: {}",
                    crate::capabilities::error_text(&e)
                ),
            }
        }
        Ok((OpResult::Event(Err(message)), mut call)) => {
            let _ = outbox::finish(platform, &plugin.ctx, &mut call, Outcome::Rollback).await;
            message
        }
        Ok(_) => "on-event returned an unexpected result".to_string(),
        Err(e) => e.to_string(),
    };
    if attempt >= bus.config.max_attempts {
        tracing::warn!(event_id, subscriber, attempt, error = %error, "event dead-lettered");
        platform.metrics.events_dead.get_or_create(&labels).inc();
        bus.finish(
            event_id,
            subscriber,
            "dead",
            attempt,
            now_ms(),
            Some(&error),
        )
        .await
    } else {
        let next =
            now_ms() + i64::try_from(bus.backoff(attempt).as_millis()).unwrap_or(i64::MAX / 2);
        tracing::info!(event_id, subscriber, attempt, error = %error, "event handler failed; will retry");
        platform.metrics.events_retried.get_or_create(&labels).inc();
        bus.finish(event_id, subscriber, "pending", attempt, next, Some(&error))
            .await
    }
}
