//! The load generator: N keep-alive HTTP/1.1 connections on hyper, each sending its next
//! request as soon as the previous answer is read (a closed loop), with every request's
//! latency recorded. Runs either for a fixed time or through a fixed list of requests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Method;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// The longest one request may take before it counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One request to send.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub token: Option<Arc<str>>,
    pub body: Option<Bytes>,
    /// An `Idempotency-Key` header.
    pub key: Option<String>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            token: None,
            body: None,
            key: None,
        }
    }

    pub fn json(method: Method, path: impl Into<String>, body: &serde_json::Value) -> Self {
        Self {
            method,
            path: path.into(),
            token: None,
            body: Some(Bytes::from(body.to_string())),
            key: None,
        }
    }

    pub fn token(mut self, token: &Arc<str>) -> Self {
        self.token = Some(token.clone());
        self
    }

    pub fn key(mut self, key: String) -> Self {
        self.key = Some(key);
        self
    }
}

/// Makes the request a connection sends next, from (connection index, its request count).
pub type Gen = Arc<dyn Fn(usize, u64) -> Req + Send + Sync>;

enum Source {
    Timed { duration: Duration, gen: Gen },
    List { reqs: Vec<Req>, next: AtomicUsize },
}

/// What a run measured.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Answers with the expected status.
    pub ok: u64,
    /// Answers with another status.
    pub failed: u64,
    /// Connection failures and timeouts (no answer at all).
    pub errors: u64,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of every answered request in microseconds, sorted.
    pub lat_us: Vec<u32>,
    /// The first unexpected answer or transport error, for the report.
    pub first_failure: Option<String>,
    /// CPU time used meanwhile, when measured ([`crate::host::on_host`]).
    pub cpu: Usage,
}

/// CPU time used by the host, by this process (the load generator), by the local
/// PostgreSQL server, and by the whole machine (read by [`Usage::now`]). On two cores
/// shared by all of them, a route's ceiling is the machine's CPU per request, not the
/// host's alone: the report shows both, so a missed throughput target says which
/// process would have to shrink.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// The host process (user + system).
    pub host: Duration,
    pub client: Duration,
    /// Every process named `postgres` (the server and its backends); zero when the
    /// server runs elsewhere. A backend that exits during a run takes its time along.
    pub postgres: Duration,
    /// Every CPU's time outside idle, iowait and steal (`/proc/stat`).
    pub machine: Duration,
}

impl Usage {
    /// What was used between `before` and this reading.
    pub fn since(&self, before: &Usage) -> Usage {
        Usage {
            host: self.host.saturating_sub(before.host),
            client: self.client.saturating_sub(before.client),
            postgres: self.postgres.saturating_sub(before.postgres),
            machine: self.machine.saturating_sub(before.machine),
        }
    }

    /// Adds another run's usage (for runs split into segments).
    fn add(&mut self, other: &Usage) {
        self.host += other.host;
        self.client += other.client;
        self.postgres += other.postgres;
        self.machine += other.machine;
    }
}

impl Stats {
    /// Expected answers per second.
    pub fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    pub fn p50_ms(&self) -> f64 {
        percentile(&self.lat_us, 50.0) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        percentile(&self.lat_us, 99.0) as f64 / 1000.0
    }

    /// Host CPU time per answered request, in microseconds (0 when not measured).
    pub fn host_us_per_req(&self) -> f64 {
        self.per_req(self.cpu.host)
    }

    /// `time` per answered request, in microseconds (0 when nothing was answered).
    pub fn per_req(&self, time: Duration) -> f64 {
        let answered = self.ok + self.failed;
        if answered == 0 {
            return 0.0;
        }
        time.as_secs_f64() * 1e6 / answered as f64
    }

    /// The most requests a second `cpus` CPUs could answer at the machine's measured CPU
    /// per request (host, load generator, database and kernel together); `None` when
    /// the machine was not measured.
    pub fn ceiling(&self, cpus: usize) -> Option<f64> {
        let us = self.per_req(self.cpu.machine);
        (us > 0.0).then(|| cpus as f64 * 1e6 / us)
    }

    /// Requests that did not get the expected answer.
    pub fn bad(&self) -> u64 {
        self.failed + self.errors
    }

    /// Adds another run's counts, time and latencies (for runs split into segments).
    pub fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.cpu.add(&other.cpu);
        self.lat_us.extend(other.lat_us);
        self.lat_us.sort_unstable();
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// The nearest-rank percentile `p` (0..=100) of sorted `values`; 0 for none.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sends requests from `gen` over `conns` connections for `duration`; an answer with
/// status `expect` counts as ok.
pub async fn run_for(
    addr: SocketAddr,
    conns: usize,
    duration: Duration,
    gen: Gen,
    expect: u16,
) -> Result<Stats> {
    run(addr, conns, Source::Timed { duration, gen }, expect).await
}

/// Sends every request of `reqs` once, spread over `conns` connections.
pub async fn run_list(
    addr: SocketAddr,
    conns: usize,
    reqs: Vec<Req>,
    expect: u16,
) -> Result<Stats> {
    let conns = conns.min(reqs.len()).max(1);
    let source = Source::List {
        reqs,
        next: AtomicUsize::new(0),
    };
    run(addr, conns, source, expect).await
}

async fn run(addr: SocketAddr, conns: usize, source: Source, expect: u16) -> Result<Stats> {
    let source = Arc::new(source);
    // Every connection is open before the clock starts.
    let barrier = Arc::new(Barrier::new(conns + 1));
    let mut tasks = Vec::with_capacity(conns);
    for idx in 0..conns {
        let source = source.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let conn = connect(addr).await;
            barrier.wait().await;
            worker(addr, idx, conn.ok(), &source, expect).await
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut total = Stats::default();
    for t in tasks {
        let s = t.await.map_err(|e| anyhow!("load worker failed: {e}"))?;
        total.ok += s.ok;
        total.failed += s.failed;
        total.errors += s.errors;
        total.lat_us.extend(s.lat_us);
        if total.first_failure.is_none() {
            total.first_failure = s.first_failure;
        }
    }
    total.elapsed = started.elapsed();
    total.lat_us.sort_unstable();
    Ok(total)
}

async fn worker(
    addr: SocketAddr,
    idx: usize,
    mut conn: Option<SendRequest<Full<Bytes>>>,
    source: &Source,
    expect: u16,
) -> Stats {
    let mut stats = Stats::default();
    let deadline = match source {
        Source::Timed { duration, .. } => Some(Instant::now() + *duration),
        Source::List { .. } => None,
    };
    let mut iter: u64 = 0;
    loop {
        let req = match source {
            Source::Timed { gen, .. } => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                gen(idx, iter)
            }
            Source::List { reqs, next } => match reqs.get(next.fetch_add(1, Ordering::Relaxed)) {
                Some(r) => r.clone(),
                None => break,
            },
        };
        iter += 1;
        if conn.is_none() {
            match connect(addr).await {
                Ok(s) => conn = Some(s),
                Err(e) => {
                    stats.errors += 1;
                    note(&mut stats, || format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(sender) = conn.as_mut() else {
            continue;
        };
        let started = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, send(sender, &req)).await {
            Ok(Ok((status, body))) => {
                let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                stats.lat_us.push(us);
                if status == expect {
                    stats.ok += 1;
                } else {
                    stats.failed += 1;
                    note(&mut stats, || {
                        let text = String::from_utf8_lossy(&body);
                        let text: String = text.chars().take(300).collect();
                        format!("{} {} -> {status}: {text}", req.method, req.path)
                    });
                }
            }
            Ok(Err(e)) => {
                stats.errors += 1;
                note(&mut stats, || format!("{} {}: {e:#}", req.method, req.path));
                conn = None;
            }
            Err(_) => {
                stats.errors += 1;
                note(&mut stats, || {
                    format!(
                        "{} {}: no answer within {REQUEST_TIMEOUT:?}",
                        req.method, req.path
                    )
                });
                conn = None;
            }
        }
    }
    stats
}

fn note(stats: &mut Stats, what: impl FnOnce() -> String) {
    if stats.first_failure.is_none() {
        stats.first_failure = Some(what());
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it.
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, req: &Req) -> Result<(u16, Bytes)> {
    sender.ready().await.context("connection closed")?;
    let mut builder = hyper::Request::builder()
        .method(req.method.clone())
        .uri(req.path.as_str())
        .header(HOST, "127.0.0.1")
        .header(USER_AGENT, "kirana-bench");
    if let Some(t) = &req.token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    if req.body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    if let Some(k) = &req.key {
        builder = builder.header("idempotency-key", k.as_str());
    }
    let request = builder
        .body(Full::new(req.body.clone().unwrap_or_default()))
        .context("building the request")?;
    let resp = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn merged_runs_add_up() {
        let mut a = Stats {
            ok: 10,
            elapsed: Duration::from_secs(1),
            lat_us: vec![1, 3],
            ..Stats::default()
        };
        a.merge(Stats {
            ok: 30,
            failed: 1,
            elapsed: Duration::from_secs(1),
            lat_us: vec![2],
            first_failure: Some("x".into()),
            ..Stats::default()
        });
        assert_eq!(a.ok, 40);
        assert_eq!(a.bad(), 1);
        assert_eq!(a.rps(), 20.0);
        assert_eq!(a.lat_us, vec![1, 2, 3]);
        assert_eq!(a.first_failure.as_deref(), Some("x"));
    }
}
