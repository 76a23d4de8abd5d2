//! `kirana:platform/services`: an in-process call from one plugin into another's
//! sandbox, carrying the original caller's identity and request id.
//!
//! This capability checks the grant and the nesting depth, keeps a circuit breaker per
//! callee ([`crate::capabilities::breaker`]) and counts the calls; running the callee
//! (its own store and limits, a deadline within the caller's, its route's access rule
//! as at the gateway, its work committed as soon as it answers below 400) is the
//! [`Invoker`]'s, which the registry implements.

use std::sync::{Arc, OnceLock, Weak};

use crate::bindings::kirana::platform::services::Host;
use crate::bindings::wit;
use crate::capabilities::breaker::Breakers;
use crate::capabilities::denied;
use crate::core::{CallFailure, Called, Invoker, View};
use crate::metrics::{CallLabels, Metrics};

/// The capability's shared state.
pub struct Services {
    invoker: OnceLock<Weak<dyn Invoker>>,
    pub breakers: Breakers,
    metrics: Arc<Metrics>,
}

impl Services {
    pub fn new(breakers: Breakers, metrics: Arc<Metrics>) -> Self {
        Self {
            invoker: OnceLock::new(),
            breakers,
            metrics,
        }
    }

    /// Connects the invoker (the registry, built after the capabilities). Weak: the
    /// registry owns the runtime that owns this state.
    pub fn connect(&self, invoker: Weak<dyn Invoker>) {
        let _ = self.invoker.set(invoker);
    }

    fn count(&self, caller: &str, callee: &str, outcome: &str) {
        self.metrics
            .service_calls
            .get_or_create(&CallLabels {
                caller: caller.to_string(),
                callee: callee.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }
}

impl View<'_, Services> {
    async fn call_service(
        &mut self,
        target: String,
        req: wit::OutgoingRequest,
    ) -> Result<wit::Response, wit::Error> {
        if !self.plugin.grants.may_call(&target) {
            return Err(denied(&format!("call:{target}"), &self.plugin.name));
        }
        let max = self.plugin.max_call_depth;
        if self.call.depth + 1 > max {
            return Err(wit::Error::Denied(format!(
                "service calls nest at most {max} deep"
            )));
        }
        if self.call.remaining().is_zero() {
            return Err(wit::Error::Timeout("no time left for the call".into()));
        }
        let Some(invoker) = self.state.invoker.get().and_then(Weak::upgrade) else {
            return Err(wit::Error::Unavailable("the host is shutting down".into()));
        };
        let state = self.state;
        let (allowed, changed) = state.breakers.allow(&target);
        if let Some(s) = changed {
            state.metrics.set_circuit(&target, s.code());
        }
        if !allowed {
            state.count(&self.plugin.name, &target, "circuit_open");
            return Err(wit::Error::Unavailable(format!(
                "{target} is failing; its circuit is open, retry shortly"
            )));
        }
        // Boxed: the callee may call further, which makes this future recursive.
        let outcome = Box::pin(invoker.call(self.call.origin(), &target, req)).await;
        let ran_ok = match &outcome {
            Ok(Called::Ran(r)) => Some(r.status < 500),
            Ok(Called::Refused(_)) | Err(CallFailure::NotLoaded(_)) => None,
            Err(_) => Some(false),
        };
        if let Some(ok) = ran_ok {
            let s = state.breakers.record(&target, ok);
            state.metrics.set_circuit(&target, s.code());
            state.count(&self.plugin.name, &target, if ok { "ok" } else { "failed" });
        }
        match outcome {
            Ok(Called::Ran(r) | Called::Refused(r)) => Ok(r),
            Err(CallFailure::NotLoaded(m) | CallFailure::Unavailable(m)) => {
                Err(wit::Error::Unavailable(m))
            }
            Err(CallFailure::Timeout(m)) => Err(wit::Error::Timeout(m)),
            Err(CallFailure::Failed(m)) => Err(wit::Error::Failed(m)),
        }
    }
}

impl Host for View<'_, Services> {
    async fn call(
        &mut self,
        plugin: String,
        request: wit::OutgoingRequest,
    ) -> wasmtime::Result<Result<wit::Response, wit::Error>> {
        Ok(self.call_service(plugin, request).await)
    }
}
