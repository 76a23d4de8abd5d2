//! Per-plugin request statistics for the operator API: totals since start and latency
//! quantiles over the most recent requests. (Prometheus has the full histograms; this
//! is the at-a-glance view `kirana plugins list` shows.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;

/// Latencies kept per plugin for the quantiles.
const RECENT: usize = 2048;

#[derive(Default)]
pub struct PluginStats {
    plugins: DashMap<String, Arc<PluginTotals>>,
}

/// One plugin's totals and recent latencies; the gateway keeps a handle per route.
#[derive(Default)]
pub struct PluginTotals {
    requests: AtomicU64,
    errors: AtomicU64,
    recent_ms: Mutex<VecDeque<f64>>,
}

impl PluginTotals {
    pub fn record(&self, status: u16, elapsed: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut recent) = self.recent_ms.lock() {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(elapsed.as_secs_f64() * 1000.0);
        }
    }
}

/// What the operator API shows.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub requests: u64,
    /// Answers with a 5xx status.
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl PluginStats {
    /// The totals of `plugin`, created on first use.
    pub fn totals(&self, plugin: &str) -> Arc<PluginTotals> {
        match self.plugins.get(plugin) {
            Some(o) => o.clone(),
            None => self.plugins.entry(plugin.to_string()).or_default().clone(),
        }
    }

    pub fn summary(&self, plugin: &str) -> Summary {
        let Some(one) = self.plugins.get(plugin).map(|o| o.clone()) else {
            return Summary::default();
        };
        let mut sorted: Vec<f64> = one
            .recent_ms
            .lock()
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        sorted.sort_by(|a, b| a.total_cmp(b));
        Summary {
            requests: one.requests.load(Ordering::Relaxed),
            errors: one.errors.load(Ordering::Relaxed),
            p50_ms: round2(quantile(&sorted, 0.50)),
            p99_ms: round2(quantile(&sorted, 0.99)),
        }
    }
}

/// Nearest-rank quantile of sorted values (0 for none).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_quantiles() {
        let s = PluginStats::default();
        for ms in 1..=100 {
            s.totals("cart")
                .record(if ms == 100 { 503 } else { 200 }, Duration::from_millis(ms));
        }
        let sum = s.summary("cart");
        assert_eq!(sum.requests, 100);
        assert_eq!(sum.errors, 1);
        assert_eq!(sum.p50_ms, 50.0);
        assert_eq!(sum.p99_ms, 99.0);
        assert_eq!(s.summary("nobody"), Summary::default());
    }

    #[test]
    fn keeps_only_recent_latencies() {
        let s = PluginStats::default();
        for _ in 0..RECENT {
            s.totals("x").record(200, Duration::from_millis(500));
        }
        for _ in 0..RECENT {
            s.totals("x").record(200, Duration::from_millis(1));
        }
        assert_eq!(s.summary("x").p99_ms, 1.0);
        assert_eq!(s.summary("x").requests, 2 * RECENT as u64);
    }
}
