//! Prometheus metrics (OpenMetrics text at `/metrics`): requests and latency by plugin
//! and route pattern (never raw paths), instance lifecycle, faults, and events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub plugin: String,
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub plugin: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub plugin: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub caller: String,
    pub callee: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CalleeLabels {
    pub callee: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub subscriber: String,
    pub topic: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s
    Histogram::new([
        0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

/// Every metric the host records, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub instantiations: Family<PluginLabels, Counter>,
    pub reuses: Family<PluginLabels, Counter>,
    pub traps: Family<PluginLabels, Counter>,
    pub timeouts: Family<PluginLabels, Counter>,
    pub memory_limits: Family<PluginLabels, Counter>,
    pub events_published: Family<TopicLabels, Counter>,
    pub events_delivered: Family<DeliveryLabels, Counter>,
    pub events_retried: Family<DeliveryLabels, Counter>,
    pub events_dead: Family<DeliveryLabels, Counter>,
    /// Events moved from plugins' outboxes to the bus.
    pub events_relayed: Counter,
    /// Deliveries skipped because the subscriber's inbox had the event already.
    pub events_duplicates: Counter,
    /// Outbox rows dropped for naming a topic the plugin does not own.
    pub events_forged: Counter,
    /// What start-up recovery found and finished, by kind.
    pub recovered: Family<KindLabels, Counter>,
    pub plugin_versions: Family<VersionLabels, Gauge>,
    pub service_calls: Family<CallLabels, Counter>,
    pub circuit_state: Family<CalleeLabels, Gauge>,
    /// Failed commands to a shared backend (Redis, PostgreSQL NOTIFY).
    pub backend_errors: Family<BackendLabels, Counter>,
    /// 1 while the configured Redis answers.
    pub redis_up: Gauge,
    /// Requests let through (`open`) or refused (`closed`) because the shared rate
    /// limiter could not be asked.
    pub rate_limit_unchecked: Family<KindLabels, Counter>,
    /// Versions currently marked live, so a swap can clear the old one.
    live: Mutex<Vec<VersionLabels>>,
    /// Per-plugin totals and recent latencies for the operator API.
    pub plugin_stats: crate::stats::PluginStats,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kirana");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let instantiations = Family::default();
        let reuses = Family::default();
        let traps = Family::default();
        let timeouts = Family::default();
        let memory_limits = Family::default();
        let events_published = Family::default();
        let events_delivered = Family::default();
        let events_retried = Family::default();
        let events_dead = Family::default();
        let events_relayed = Counter::default();
        let events_duplicates = Counter::default();
        let events_forged = Counter::default();
        let recovered = Family::default();
        let plugin_versions = Family::default();
        let service_calls = Family::default();
        let circuit_state = Family::default();
        let backend_errors = Family::default();
        let redis_up = Gauge::default();
        let rate_limit_unchecked = Family::default();
        registry.register(
            "backend_errors",
            "Failed commands to a shared backend, by backend",
            backend_errors.clone(),
        );
        registry.register(
            "redis_up",
            "1 while the configured Redis answers",
            redis_up.clone(),
        );
        registry.register(
            "rate_limit_unchecked",
            "Requests the shared rate limiter could not count, by what was done (open: let through, closed: refused)",
            rate_limit_unchecked.clone(),
        );
        registry.register(
            "http_requests",
            "Requests routed to plugins",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from routing to the plugin's answer",
            latency.clone(),
        );
        registry.register(
            "instantiations",
            "Plugin instances created",
            instantiations.clone(),
        );
        registry.register(
            "instance_reuses",
            "Calls served by a warm instance",
            reuses.clone(),
        );
        registry.register("traps", "Plugin calls that trapped", traps.clone());
        registry.register(
            "timeouts",
            "Plugin calls cut off at their time limit",
            timeouts.clone(),
        );
        registry.register(
            "memory_limit_hits",
            "Plugin calls that hit their memory cap",
            memory_limits.clone(),
        );
        registry.register(
            "events_published",
            "Events committed to the outbox",
            events_published.clone(),
        );
        registry.register(
            "events_delivered",
            "Event deliveries handled successfully",
            events_delivered.clone(),
        );
        registry.register(
            "events_retried",
            "Event deliveries that failed and will be retried",
            events_retried.clone(),
        );
        registry.register(
            "events_dead",
            "Event deliveries dead-lettered",
            events_dead.clone(),
        );
        registry.register(
            "events_relayed",
            "Events moved from plugins' outboxes to the bus",
            events_relayed.clone(),
        );
        registry.register(
            "events_duplicates",
            "Deliveries skipped because the subscriber had handled the event already",
            events_duplicates.clone(),
        );
        registry.register(
            "events_forged",
            "Outbox rows dropped for naming a topic their plugin does not own",
            events_forged.clone(),
        );
        registry.register(
            "recovered",
            "Work left by a previous process and finished at start, by kind",
            recovered.clone(),
        );
        registry.register(
            "plugin_version_live",
            "1 for each live plugin version",
            plugin_versions.clone(),
        );
        registry.register(
            "service_calls",
            "services.call by caller, callee and outcome",
            service_calls.clone(),
        );
        registry.register(
            "circuit_state",
            "Callee circuit: 0 closed, 1 open, 2 half-open",
            circuit_state.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            instantiations,
            reuses,
            traps,
            timeouts,
            memory_limits,
            events_published,
            events_delivered,
            events_retried,
            events_dead,
            events_relayed,
            events_duplicates,
            events_forged,
            recovered,
            plugin_versions,
            service_calls,
            circuit_state,
            backend_errors,
            redis_up,
            rate_limit_unchecked,
            live: Mutex::new(Vec::new()),
            plugin_stats: Default::default(),
        }
    }
}

/// The handles a public route records into, resolved once per route table: recording
/// a request then hashes no label strings (a `Family` lookup builds and hashes its
/// labels on every call).
pub struct RouteMetrics {
    requests: Family<RequestLabels, Counter>,
    /// Labels of this route, for a status seen for the first time.
    plugin: String,
    route: String,
    method: String,
    by_status: DashMap<u16, Counter>,
    latency: Histogram,
    totals: Arc<crate::stats::PluginTotals>,
}

impl RouteMetrics {
    /// Records one request to this route.
    pub fn record(&self, status: u16, elapsed: Duration) {
        match self.by_status.get(&status) {
            Some(c) => {
                c.inc();
            }
            None => {
                let labels = RequestLabels {
                    plugin: self.plugin.clone(),
                    route: self.route.clone(),
                    method: self.method.clone(),
                    status,
                };
                let c = self.requests.get_or_create(&labels).clone();
                c.inc();
                self.by_status.insert(status, c);
            }
        }
        self.latency.observe(elapsed.as_secs_f64());
        self.totals.record(status, elapsed);
    }
}

/// One plugin's instance counters, resolved once per loaded version.
pub struct PluginCounters {
    pub instantiations: Counter,
    pub reuses: Counter,
    pub traps: Counter,
    pub timeouts: Counter,
    pub memory_limits: Counter,
}

impl Metrics {
    /// The handles `plugin`'s `method route` records into.
    pub fn route(&self, plugin: &str, route: &str, method: &str) -> RouteMetrics {
        let latency = self
            .latency
            .get_or_create(&RouteLabels {
                plugin: plugin.to_string(),
                route: route.to_string(),
            })
            .clone();
        RouteMetrics {
            requests: self.requests.clone(),
            plugin: plugin.to_string(),
            route: route.to_string(),
            method: method.to_string(),
            by_status: DashMap::new(),
            latency,
            totals: self.plugin_stats.totals(plugin),
        }
    }

    /// The instance counters of `plugin`.
    pub fn plugin_counters(&self, plugin: &str) -> PluginCounters {
        let labels = PluginLabels {
            plugin: plugin.to_string(),
        };
        PluginCounters {
            instantiations: self.instantiations.get_or_create(&labels).clone(),
            reuses: self.reuses.get_or_create(&labels).clone(),
            traps: self.traps.get_or_create(&labels).clone(),
            timeouts: self.timeouts.get_or_create(&labels).clone(),
            memory_limits: self.memory_limits.get_or_create(&labels).clone(),
        }
    }

    /// Marks exactly `versions` as the live plugin versions.
    pub fn set_live(&self, versions: &[(String, String)]) {
        let Ok(mut live) = self.live.lock() else {
            return;
        };
        for old in live.drain(..) {
            self.plugin_versions.get_or_create(&old).set(0);
        }
        for (plugin, version) in versions {
            let l = VersionLabels {
                plugin: plugin.clone(),
                version: version.clone(),
            };
            self.plugin_versions.get_or_create(&l).set(1);
            live.push(l);
        }
    }

    /// Sets `circuit_state{callee}` (0 closed, 1 open, 2 half-open).
    pub fn set_circuit(&self, callee: &str, code: i64) {
        self.circuit_state
            .get_or_create(&CalleeLabels {
                callee: callee.to_string(),
            })
            .set(code);
    }

    /// Creates the event series of the live plugins at zero, so a fresh host exports
    /// `events_published_total` for every topic a plugin may publish and
    /// `events_delivered/retried/dead_total` for every subscription before the first
    /// event (a counter that appears only on its first increment hides that first
    /// increase from `rate()`). `publish` lists topics, `subscribe` (subscriber, topic).
    pub fn touch_events(&self, publish: &[String], subscribe: &[(String, String)]) {
        for topic in publish.iter().filter(|t| t.as_str() != "*") {
            // Creating the series is the point; the guard is not needed.
            let _ = self.events_published.get_or_create(&TopicLabels {
                topic: topic.clone(),
            });
        }
        for (subscriber, topic) in subscribe {
            let l = DeliveryLabels {
                subscriber: subscriber.clone(),
                topic: topic.clone(),
            };
            let _ = self.events_delivered.get_or_create(&l);
            let _ = self.events_retried.get_or_create(&l);
            let _ = self.events_dead.get_or_create(&l);
        }
    }

    /// The OpenMetrics 1.0 exposition (what Prometheus asks for first).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// The classic Prometheus text format 0.0.4, for scrapers and tools (`promtool`,
    /// older agents) that do not speak OpenMetrics.
    pub fn render_prometheus_text(&self) -> String {
        openmetrics_to_prometheus_text(&self.render())
    }
}

/// Rewrites an OpenMetrics exposition as Prometheus text 0.0.4: counter families are
/// named with their `_total` suffix, `info` families become gauges named `..._info`,
/// and `# UNIT` and `# EOF` lines go. Samples are the same in both formats.
pub fn openmetrics_to_prometheus_text(om: &str) -> String {
    use std::collections::HashMap;
    let mut kinds: HashMap<&str, &str> = HashMap::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                kinds.insert(name, kind.trim());
            }
        }
    }
    let renamed = |name: &str| -> String {
        match kinds.get(name) {
            Some(&"counter") => format!("{name}_total"),
            Some(&"info") => format!("{name}_info"),
            _ => name.to_string(),
        }
    };
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", renamed(name)));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind = if kind == "info" { "gauge" } else { kind };
            out.push_str(&format!("# TYPE {} {kind}\n", renamed(name)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_and_infos_like_their_samples() {
        let om =
            "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total{a=\"1\"} 2\n\
                  # HELP x_build Build.\n# TYPE x_build info\nx_build_info{v=\"1\"} 1\n\
                  # HELP x_up Up.\n# TYPE x_up gauge\n# UNIT x_up seconds\nx_up 1\n# EOF\n";
        let text = openmetrics_to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total{a=\"1\"} 2\n\
             # HELP x_build_info Build.\n# TYPE x_build_info gauge\nx_build_info{v=\"1\"} 1\n\
             # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n"
        );
    }

    #[test]
    fn renders_requests_by_route_pattern_and_live_versions() {
        let m = Metrics::default();
        let route = m.route("catalog", "/api/v1/products/{id}", "GET");
        route.record(200, Duration::from_millis(3));
        route.record(404, Duration::from_millis(1));
        route.record(200, Duration::from_millis(2));
        m.set_live(&[("catalog".into(), "1.0.0".into())]);
        m.set_live(&[("catalog".into(), "1.1.0".into())]);
        let text = m.render();
        assert!(text.contains(r#"kirana_http_requests_total{plugin="catalog",route="/api/v1/products/{id}",method="GET",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"kirana_http_requests_total{plugin="catalog",route="/api/v1/products/{id}",method="GET",status="404"} 1"#), "{text}");
        assert!(
            text.contains(r#"kirana_http_request_duration_seconds_count{plugin="catalog",route="/api/v1/products/{id}"} 3"#),
            "{text}"
        );
        assert_eq!(m.plugin_stats.summary("catalog").requests, 3);
        assert!(
            text.contains(r#"kirana_plugin_version_live{plugin="catalog",version="1.1.0"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kirana_plugin_version_live{plugin="catalog",version="1.0.0"} 0"#),
            "{text}"
        );
        assert!(
            text.contains("kirana_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
