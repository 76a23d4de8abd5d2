//! `kirana:platform/services`: an in-process call from one plugin into another's
//! sandbox, carrying the original caller's identity and request id.
//!
//! The callee runs in its own store with its own limits; its deadline never outlives
//! the caller's, and its route's access rule holds as at the gateway (internal routes
//! need no caller). The callee's writes are its own, so the events it publishes are
//! committed as soon as it answers below 400, whatever the caller does next. A callee
//! that keeps failing trips its circuit breaker ([`crate::capabilities::breaker`]).

use std::time::Instant;

use crate::capabilities::{denied, outbox};
use crate::metrics::CallLabels;
use crate::runtime::bindings::kirana::platform::services::Host;
use crate::runtime::bindings::wit;
use crate::runtime::{CallCtx, HostState, InvokeError, Op, OpResult};

/// A JSON error body like the gateway's, for a call the host refuses itself.
fn error_response(request_id: &str, status: u16, code: &str, message: &str) -> wit::Response {
    let body = serde_json::json!({
        "error": {"code": code, "message": message, "details": {}},
        "request_id": request_id,
    });
    wit::Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

impl HostState {
    async fn call_service(
        &mut self,
        target: String,
        req: wit::OutgoingRequest,
    ) -> Result<wit::Response, wit::Error> {
        if !self.plugin.grants.may_call(&target) {
            return Err(denied(&format!("call:{target}"), &self.plugin.name));
        }
        let depth = self.call.depth + 1;
        let max = self.plugin.max_call_depth;
        if depth > max {
            return Err(wit::Error::Denied(format!(
                "service calls nest at most {max} deep"
            )));
        }
        let Some(callee) = self.platform.registry.get(&target) else {
            return Err(wit::Error::Unavailable(format!(
                "plugin {target} is not available"
            )));
        };
        let Some((idx, params)) = callee.match_route(&req.method, &req.path) else {
            return Ok(error_response(
                &self.call.request_id,
                404,
                "not_found",
                &format!("no route {} {}", req.method, req.path),
            ));
        };
        // The callee's route rules hold for calls from plugins too (internal routes are
        // for plugins only, so they need no caller).
        let caller_role = self.call.caller.as_ref().map(|c| c.role.as_str());
        match (&callee.manifest.routes[idx].access, caller_role) {
            (wit::Access::Public | wit::Access::Internal, _) => {}
            (_, None) => {
                return Ok(error_response(
                    &self.call.request_id,
                    401,
                    "unauthorized",
                    "this route needs a caller",
                ));
            }
            (wit::Access::Roles(roles), Some(role)) if !roles.iter().any(|r| r == role) => {
                return Ok(error_response(
                    &self.call.request_id,
                    403,
                    "forbidden",
                    "the caller's role may not use this route",
                ));
            }
            _ => {}
        }
        let remaining = self.call.remaining();
        if remaining.is_zero() {
            return Err(wit::Error::Timeout("no time left for the call".into()));
        }
        let timeout = remaining.min(callee.ctx.timeout);
        let mut child = CallCtx::new(
            self.call.request_id.clone(),
            self.call.caller.clone(),
            depth,
            timeout,
        );
        child.deadline = Instant::now() + timeout;
        let request = wit::Request {
            method: req.method.to_ascii_uppercase(),
            path: req.path,
            route: callee.manifest.routes[idx].path.clone(),
            params,
            query: req.query,
            headers: req
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body: req.body,
            caller: self.call.caller.clone(),
            request_id: self.call.request_id.clone(),
        };
        let platform = self.platform.clone();
        let (allowed, changed) = platform.breakers.allow(&target);
        if let Some(state) = changed {
            self.platform.metrics.set_circuit(&target, state.code());
        }
        if !allowed {
            self.count_call(&target, "circuit_open");
            return Err(wit::Error::Unavailable(format!(
                "{target} is failing; its circuit is open, retry shortly"
            )));
        }
        // Boxed: the callee may call further, which makes this future recursive.
        let callee_ctx = callee.ctx.clone();
        let run = Box::pin(async move { callee.run(&platform, child, Op::Handle(request)).await });
        let outcome = run.await;
        let ok = matches!(&outcome, Ok((OpResult::Response(r), _)) if r.status < 500);
        let state = self.platform.breakers.record(&target, ok);
        self.platform.metrics.set_circuit(&target, state.code());
        self.count_call(&target, if ok { "ok" } else { "failed" });
        match outcome {
            Ok((OpResult::Response(resp), mut child)) => {
                // The callee's work commits now, with its events, whatever the caller
                // does next: the callee answered.
                let outcome = outbox::outcome_of(resp.status);
                match outbox::finish(&self.platform, &callee_ctx, &mut child, outcome).await {
                    Ok(_) => Ok(resp),
                    Err(e) => Err(wit::Error::Unavailable(format!(
                        "{target} could not commit its work ({}); nothing was changed",
                        crate::capabilities::error_text(&e)
                    ))),
                }
            }
            Ok(_) => Err(wit::Error::Failed(format!(
                "{target} returned an unexpected result"
            ))),
            Err(InvokeError::Timeout(crate::runtime::Limit::Time)) => Err(wit::Error::Timeout(
                format!("{target} did not answer within {} ms", timeout.as_millis()),
            )),
            Err(InvokeError::Timeout(crate::runtime::Limit::Fuel)) => Err(wit::Error::Timeout(
                format!("{target} spent its fuel budget before answering"),
            )),
            Err(e) => Err(wit::Error::Unavailable(format!("{target} failed: {e}"))),
        }
    }

    fn count_call(&self, callee: &str, outcome: &str) {
        self.platform
            .metrics
            .service_calls
            .get_or_create(&CallLabels {
                caller: self.plugin.name.clone(),
                callee: callee.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }
}

impl Host for HostState {
    async fn call(
        &mut self,
        plugin: String,
        request: wit::OutgoingRequest,
    ) -> wasmtime::Result<Result<wit::Response, wit::Error>> {
        Ok(self.call_service(plugin, request).await)
    }
}
