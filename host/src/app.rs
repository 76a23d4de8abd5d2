//! Wires the host together: configuration → storage → runtime → capabilities →
//! plugins → gateway, and runs it until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::capabilities::events::EventBus;
use crate::capabilities::identity::IdentityService;
use crate::capabilities::kv::redis::RedisKv;
use crate::capabilities::kv::{KvBackend, MemoryKv};
use crate::capabilities::services::Services;
use crate::cluster::{Channel, Cluster, Message};
use crate::config::Config;
use crate::gateway::rate_limit::{
    MemoryRateLimiter, RateLimitBackend, RateLimiter, RedisRateLimiter,
};
use crate::registry::dispatch::run_dispatcher;
use crate::registry::Platform;
use crate::registry::{self, Registry};
use crate::runtime::{Caps, Runtime};
use crate::{gateway, storage};

/// Finishes what a previous process left, before the host reports ready: events its
/// plugins committed but it never moved to the bus. (Holds that expired are released
/// by their own scheduled events, which this makes due; leases of a dead process on
/// deliveries and mail run out by themselves after their lease time.)
async fn recover(platform: &Platform) {
    let relayed = crate::registry::effects::relay_all(platform).await;
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

/// Acts on what other replicas publish: revoked sessions, registry changes, pushes for
/// users connected here, waiting work. After a reconnection (messages may have been
/// missed), and every `registry.reconcile_secs`, re-reads what the database says.
async fn follow_feed(platform: Arc<Platform>, mut stop: watch::Receiver<bool>) {
    let feed = platform.cluster.feed.clone();
    let mut messages = feed.subscribe();
    let mut connections = feed.connections();
    connections.mark_unchanged();
    let every = platform.config.registry.reconcile_secs;
    let mut tick = tokio::time::interval(Duration::from_secs(every.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let catch_up = |platform: &Arc<Platform>| {
        platform.identity.forget_cache();
        platform.events.wake();
        platform.mail.wake();
        let platform = platform.clone();
        tokio::spawn(async move {
            if let Err(e) =
                registry::reconcile::reconcile(&platform, registry::reconcile::Scope::All).await
            {
                tracing::warn!(error = %format!("{e:#}"), "reconciling the registry");
            }
        });
    };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            msg = messages.recv() => match msg {
                Ok(m) => on_message(&platform, m),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the change feed outran this replica; reconciling");
                    catch_up(&platform);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            changed = connections.changed() => {
                if changed.is_err() {
                    return;
                }
                tracing::info!(feed = feed.kind(), "change feed connected; reconciling");
                catch_up(&platform);
            }
            _ = tick.tick(), if every > 0 => {
                let platform = platform.clone();
                tokio::spawn(async move {
                    if let Err(e) = registry::reconcile::reconcile(&platform, registry::reconcile::Scope::All).await {
                        tracing::warn!(error = %format!("{e:#}"), "reconciling the registry");
                    }
                });
            }
        }
    }
}

fn on_message(platform: &Arc<Platform>, m: Message) {
    match m.channel {
        Channel::Revoked => platform.identity.revoked_elsewhere(&m.body),
        Channel::Realtime => platform.realtime.push_from_feed(&m.body),
        Channel::Wake => match m.body.as_str() {
            crate::capabilities::events::WAKE_EVENTS => platform.events.wake(),
            crate::capabilities::mail::WAKE_MAIL => platform.mail.wake(),
            _ => {}
        },
        Channel::Registry => {
            let platform = platform.clone();
            tokio::spawn(async move {
                let scope = registry::reconcile::Scope::One(&m.body);
                if let Err(e) = registry::reconcile::reconcile(&platform, scope).await {
                    tracing::warn!(plugin = %m.body, error = %format!("{e:#}"), "following a registry change");
                }
            });
        }
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
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let cluster = Cluster::connect(&config, &db, &metrics).await?;
        let feed = cluster.feed.clone();
        tracing::info!(
            feed = feed.kind(),
            redis = cluster.redis.is_some(),
            "cluster backends chosen"
        );
        let kv: Arc<dyn KvBackend> = match &cluster.redis {
            Some(r) => Arc::new(RedisKv::new(r.clone())),
            None => Arc::new(MemoryKv::default()),
        };
        let rate_backend: Box<dyn RateLimitBackend> = match &cluster.redis {
            Some(r) => Box::new(RedisRateLimiter::new(r.clone())),
            None => Box::<MemoryRateLimiter>::default(),
        };
        let unchecked = ["open", "closed"].map(|kind| {
            metrics
                .rate_limit_unchecked
                .get_or_create(&crate::metrics::KindLabels { kind: kind.into() })
                .clone()
        });
        let caps = Arc::new(Caps {
            kv: kv.clone(),
            identity: Arc::new(
                IdentityService::new(
                    db.clone(),
                    &config.identity,
                    crate::capabilities::oidc::Oidc::new(
                        db.clone(),
                        &config.oidc,
                        &config.public_url,
                    )?,
                    feed.clone(),
                )
                .await?,
            ),
            realtime: Arc::new(crate::capabilities::realtime::Hub::new(feed.clone())),
            mail: Arc::new(
                crate::capabilities::mail::Mail::new(
                    db.clone(),
                    config.mail.clone(),
                    config.push.clone(),
                    config.push_subject(),
                    feed.clone(),
                )
                .await?,
            ),
            files: Arc::new(crate::capabilities::files::Files::new(&config, &db)?),
            services: Services::new(
                crate::capabilities::breaker::Breakers::new(
                    config.services.breaker_failures,
                    Duration::from_millis(config.services.breaker_cooldown_ms),
                ),
                metrics.clone(),
            ),
            config: Arc::default(),
        });
        let runtime = Runtime::new(&config, caps.clone(), metrics.clone())?;
        tracing::info!(pooling = runtime.pooled, "wasm runtime ready");
        let platform = Arc::new(Platform {
            config: config.clone(),
            runtime,
            db: db.clone(),
            kv,
            identity: caps.identity.clone(),
            events: EventBus::new(db.clone(), config.events.clone(), feed),
            relay: Default::default(),
            mail: caps.mail.clone(),
            realtime: caps.realtime.clone(),
            cluster,
            registry: Registry::default(),
            metrics,
        });
        // The registry is the capabilities' way to other plugins, and what frees warm
        // instances when the pool is full; weakly, as it owns the runtime that holds them.
        let invoker: Arc<dyn crate::core::Invoker> = platform.clone();
        caps.services.connect(Arc::downgrade(&invoker));
        let weak = Arc::downgrade(&platform);
        platform.runtime.on_pool_full(Box::new(move || {
            if let Some(p) = weak.upgrade() {
                p.registry.drain_all();
            }
        }));
        // Replicas on one PostgreSQL start one at a time: plugin roles and migrations
        // are not safe to create twice at once.
        let lock = storage::AdvisoryLock::take(&platform.db, storage::locks::STARTUP).await?;
        registry::start(&platform).await?;
        recover(&platform).await;
        lock.release().await;

        let limiter = Arc::new(RateLimiter::with_metrics(
            config.rate_limit.clone(),
            rate_backend,
            unchecked,
        ));
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(run_dispatcher(platform.clone(), stopped.clone())),
            tokio::spawn(crate::registry::effects::run_relay(
                platform.clone(),
                stopped.clone(),
            )),
            tokio::spawn(sweep(platform.clone(), limiter.clone(), stopped.clone())),
            tokio::spawn(crate::capabilities::mail::run_sender(
                platform.mail.clone(),
                stopped.clone(),
            )),
            tokio::spawn(follow_feed(platform.clone(), stopped.clone())),
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
        caps.config.bound(&config.public_url, config.dev, addr);
        let app = gateway::router(
            platform.clone(),
            limiter.clone(),
            crate::admin::router(platform.clone()),
            crate::console::router(),
        );
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
