//! Wires the host together: configuration → storage → runtime → capabilities →
//! plugins → gateway, and runs it until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::capabilities::events::{run_dispatcher, EventBus};
use crate::capabilities::identity::IdentityService;
use crate::capabilities::kv::MemoryKv;
use crate::config::Config;
use crate::gateway::rate_limit::{MemoryRateLimiter, RateLimiter};
use crate::platform::Platform;
use crate::registry::{self, Registry};
use crate::runtime::Runtime;
use crate::{gateway, storage};

/// Finishes what a previous process left, before the host reports ready: events its
/// plugins committed but it never moved to the bus. (Holds that expired are released
/// by their own scheduled events, which this makes due; leases of a dead process on
/// deliveries and mail run out by themselves after their lease time.)
async fn recover(platform: &Platform) {
    let relayed = crate::capabilities::outbox::relay_all(platform).await;
    if relayed > 0 {
        tracing::warn!(
            events = relayed,
            "recovered events committed before the last stop and not yet on the bus"
        );
        platform
            .metrics
            .recovered
            .get_or_create(&crate::metrics::KindLabels {
                kind: "outbox_events".into(),
            })
            .inc_by(relayed as u64);
    }
}

/// A running host.
pub struct App {
    pub addr: SocketAddr,
    pub platform: Arc<Platform>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<Result<()>>,
}

impl App {
    /// Opens storage, loads and migrates the plugins, binds `config.listen` and starts
    /// serving. Returns once the host is ready.
    pub async fn start(config: Config) -> Result<Self> {
        let started = Instant::now();
        let config = Arc::new(config);
        let db = storage::open_host(&config).await?;
        let identity = IdentityService::new(db.clone(), &config.identity).await?;
        let runtime = Runtime::new(&config)?;
        tracing::info!(pooling = runtime.pooled, "wasm runtime ready");
        let platform = Arc::new(Platform {
            config: config.clone(),
            runtime,
            db: db.clone(),
            kv: MemoryKv::default(),
            identity,
            events: EventBus::new(db.clone(), config.events.clone()),
            relay: Default::default(),
            mail: crate::capabilities::mail::Mail::new(db, config.mail.clone()),
            realtime: Default::default(),
            registry: Registry::default(),
            metrics: Default::default(),
            breakers: crate::capabilities::breaker::Breakers::new(
                config.services.breaker_failures,
                Duration::from_millis(config.services.breaker_cooldown_ms),
            ),
        });
        registry::start(&platform).await?;
        recover(&platform).await;

        let limiter = Arc::new(RateLimiter::new(
            config.rate_limit.clone(),
            Box::<MemoryRateLimiter>::default(),
        ));
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(run_dispatcher(platform.clone(), stopped.clone())),
            tokio::spawn(crate::capabilities::outbox::run_relay(
                platform.clone(),
                stopped.clone(),
            )),
            tokio::spawn(sweep(platform.clone(), limiter.clone(), stopped.clone())),
            tokio::spawn(crate::capabilities::mail::run_sender(
                platform.clone(),
                stopped.clone(),
            )),
        ];
        let mut tasks = tasks;
        if config.uses_postgres() {
            tasks.push(tokio::spawn(statement_watchdog(
                platform.clone(),
                stopped.clone(),
            )));
        }

        let listener = TcpListener::bind(&config.listen).await.with_context(|| {
            format!(
                "binding {} (is another kirana running? set KIRANA_LISTEN)",
                config.listen
            )
        })?;
        let addr = listener.local_addr()?;
        let app = gateway::router(platform.clone(), limiter.clone());
        let mut shutdown = stopped;
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .await
            .context("HTTP server failed")
        });
        tracing::info!(%addr, ms = started.elapsed().as_millis() as u64, "kirana is serving");
        Ok(Self {
            addr,
            platform,
            stop,
            tasks,
            server,
        })
    }

    /// Stops accepting, lets in-flight requests and event deliveries finish, and stops
    /// the background tasks.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        // Live SSE streams never end on their own; end them so the server can drain.
        self.platform.realtime.close();
        let res = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        for t in self.tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.platform.registry.shutdown().await;
        self.platform.db.pool.close().await;
        match res {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(anyhow::anyhow!("server task: {e}")),
            Err(_) => Err(anyhow::anyhow!(
                "in-flight requests did not finish within 10 s"
            )),
        }
    }

    /// Serves until Ctrl-C or SIGTERM, then stops gracefully.
    pub async fn run_until_signal(self) -> Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await
    }
}

/// Drops expired kv entries, idle rate-limit keys and realtime channels without
/// connections every 30 s.
async fn sweep(
    platform: Arc<Platform>,
    limiter: Arc<RateLimiter>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {
                let kv = platform.kv.sweep();
                let keys = limiter.sweep();
                platform.realtime.sweep();
                tracing::debug!(kv, rate_limit_keys = keys, "swept");
            }
        }
    }
}

/// Every second on PostgreSQL: cancels plugin statements that outlived their plugin's
/// time limit (see [`storage::cancel_overdue_statements`]).
async fn statement_watchdog(platform: Arc<Platform>, mut stop: watch::Receiver<bool>) {
    let mut database: Option<String> = None;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let snap = platform.registry.snapshot();
        let mut limits: Vec<(String, Duration)> = snap
            .plugins
            .values()
            .chain(snap.disabled.values())
            .chain(snap.canaries.values().map(|c| &c.plugin))
            .map(|p| (p.name().to_string(), p.ctx.timeout))
            .collect();
        drop(snap);
        // A canary shares its plugin's role: the longer limit counts.
        limits.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        limits.dedup_by(|a, b| a.0 == b.0);
        if database.is_none() {
            match storage::database_name(&platform.db).await {
                Ok(name) => database = Some(name),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "checking for overdue plugin statements failed");
                    continue;
                }
            }
        }
        let database = database.as_deref().unwrap_or_default();
        match storage::cancel_overdue_statements(&platform.db, database, &limits).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                cancelled = n,
                "cancelled plugin statements that ran past their time limit"
            ),
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "checking for overdue plugin statements failed"
            ),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
