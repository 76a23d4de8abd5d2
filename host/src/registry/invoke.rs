//! Running a plugin and committing what it did, written once for every caller: the
//! gateway, service calls between plugins, the event dispatcher and migrations.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::effects::{self as outbox};
use super::routes::{Access, Refusal};
use super::Platform;
use crate::bindings::wit;
use crate::core::{
    CallCtx, CallFailure, CallOrigin, Called, InvokeError, Invoker, Limit, Op, OpResult,
};
use crate::runtime::LoadedPlugin;

/// Why a request handled by a plugin has no answer to give.
#[derive(Debug)]
pub enum HandleError {
    /// The plugin did not answer (time, fuel, trap, memory, no instance).
    Invoke(InvokeError),
    /// It answered, but its work could not be committed: nothing was changed.
    NotCommitted(wit::Error),
    /// `handle` returned something that is not a response.
    Unexpected,
}

impl Platform {
    /// Runs `op` in `plugin` with this host's runtime.
    pub async fn run(
        &self,
        plugin: &LoadedPlugin,
        call: CallCtx,
        op: Op,
    ) -> Result<(OpResult, CallCtx), InvokeError> {
        plugin.run(&self.runtime, call, op).await
    }

    /// Runs `request` in `plugin`'s `handle` and commits the call's work by its answer
    /// (below 400 with its events, 4xx without, 5xx rolled back).
    pub async fn handle(
        &self,
        plugin: &LoadedPlugin,
        call: CallCtx,
        request: wit::Request,
    ) -> Result<wit::Response, HandleError> {
        // Both futures are boxed: held inline (sqlx's commit, the instance's call) they
        // made the gateway's request future about 15 KB, copied several times a request.
        match Box::pin(self.run(plugin, call, Op::Handle(request))).await {
            Ok((OpResult::Response(resp), mut call)) => {
                let outcome = outbox::outcome_of(resp.status);
                match Box::pin(outbox::finish(self, &plugin.ctx, &mut call, outcome)).await {
                    Ok(_) => Ok(resp),
                    Err(e) => Err(HandleError::NotCommitted(e)),
                }
            }
            Ok(_) => Err(HandleError::Unexpected),
            Err(e) => Err(HandleError::Invoke(e)),
        }
    }
}

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

/// Service calls: the callee's route and access rule as at the gateway, a deadline
/// within the caller's, and its work committed as soon as it answers.
#[async_trait]
impl Invoker for Platform {
    async fn call(
        &self,
        parent: CallOrigin,
        target: &str,
        req: wit::OutgoingRequest,
    ) -> Result<Called, CallFailure> {
        let Some(callee) = self.registry.get(target) else {
            return Err(CallFailure::NotLoaded(format!(
                "plugin {target} is not available"
            )));
        };
        let rid = parent.request_id.as_str();
        let Some((idx, params)) = callee.match_route(&req.method, &req.path) else {
            return Ok(Called::Refused(error_response(
                rid,
                404,
                "not_found",
                &format!("no route {} {}", req.method, req.path),
            )));
        };
        let route = &callee.manifest.routes[idx];
        match Access::admits_call(&route.access, parent.caller.as_ref()) {
            Ok(()) => {}
            Err(Refusal::NeedsCaller) => {
                return Ok(Called::Refused(error_response(
                    rid,
                    401,
                    "unauthorized",
                    "this route needs a caller",
                )))
            }
            Err(Refusal::WrongRole(_)) => {
                return Ok(Called::Refused(error_response(
                    rid,
                    403,
                    "forbidden",
                    "the caller's role may not use this route",
                )))
            }
        }
        let timeout = parent.remaining().min(callee.ctx.timeout);
        let mut child = CallCtx::new(
            parent.request_id.clone(),
            parent.caller.clone(),
            parent.depth + 1,
            timeout,
        );
        child.deadline = Instant::now() + timeout;
        let request = wit::Request {
            method: req.method.to_ascii_uppercase(),
            path: req.path,
            route: route.path.clone(),
            params,
            query: req.query,
            headers: req
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body: req.body,
            caller: parent.caller.clone(),
            request_id: parent.request_id.clone(),
        };
        let callee: Arc<LoadedPlugin> = callee;
        match self.handle(&callee, child, request).await {
            Ok(resp) => Ok(Called::Ran(resp)),
            Err(HandleError::NotCommitted(e)) => Err(CallFailure::Unavailable(format!(
                "{target} could not commit its work ({}); nothing was changed",
                crate::capabilities::error_text(&e)
            ))),
            Err(HandleError::Unexpected) => Err(CallFailure::Failed(format!(
                "{target} returned an unexpected result"
            ))),
            Err(HandleError::Invoke(InvokeError::Timeout(Limit::Time))) => {
                Err(CallFailure::Timeout(format!(
                    "{target} did not answer within {} ms",
                    timeout.as_millis()
                )))
            }
            Err(HandleError::Invoke(InvokeError::Timeout(Limit::Fuel))) => Err(
                CallFailure::Timeout(format!("{target} spent its fuel budget before answering")),
            ),
            Err(HandleError::Invoke(InvokeError::Timeout(Limit::Instances))) => {
                Err(CallFailure::Timeout(format!(
                    "{target} is busy: all of its instances stayed in use until the deadline"
                )))
            }
            Err(HandleError::Invoke(e)) => {
                Err(CallFailure::Unavailable(format!("{target} failed: {e}")))
            }
        }
    }
}
