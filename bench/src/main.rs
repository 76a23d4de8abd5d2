//! `bench`: Kirana's benchmark suite (issue #6). Builds the host and the plugins (unless
//! `--no-build`), starts the real host as a child process on a loopback port with a
//! temporary data directory, loads it with its own HTTP/1.1 client, and prints one
//! table: every figure next to a baseline measured in the same run, their ratio, the
//! target and whether it is met. See BENCHMARKS.md for what each figure means.

mod api;
mod host;
mod instantiate;
mod load;
mod overhead;
mod pg;
mod python;
mod restart;
mod search;
mod shop;
mod swap;
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use crate::api::Api;
use crate::host::{Host, HostSpec};
use crate::table::Row;

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Kirana's benchmark suite: starts the real host on loopback and prints one table"
)]
struct Args {
    /// About 1 s per measurement (for smoke tests); the default is 4 s.
    #[arg(long)]
    quick: bool,
    /// Seconds per throughput measurement (overrides --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Customers signed up for the shop and checkout figures.
    #[arg(long, default_value_t = 128)]
    users: usize,
    /// Worker threads of the load generator (it shares the machine with the host).
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Skip the PostgreSQL rows.
    #[arg(long)]
    no_postgres: bool,
    /// A PostgreSQL URL naming a database the user may run CREATE DATABASE from; a
    /// throw-away database is created next to it and dropped at the end.
    #[arg(
        long,
        env = "KIRANA_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:55433/postgres"
    )]
    postgres_url: String,
    /// Do not run cargo first (target/release/kirana and the plugins' .wasm must exist).
    #[arg(long)]
    no_build: bool,
    /// Run only these sections (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Section {
    /// 1: no-op plugin route vs native route, fresh and reuse.
    Overhead,
    /// 2: instantiate + first call, pooled vs on-demand (in-process).
    Instantiate,
    /// 3: catalog and cart routes on SQLite and PostgreSQL.
    Shop,
    /// 4: checkout orders/s on SQLite and PostgreSQL.
    Checkout,
    /// 5: enable/rollback under load.
    Swap,
    /// 6: restart to ready (cold compile vs cache) and RSS.
    Restart,
    /// 3 (search rows): search and suggest on SQLite and PostgreSQL, search quality.
    Search,
    /// 7: the Python plugin next to a Rust one: a route, reuse vs fresh, RSS under load.
    Python,
}

/// What every measurement needs.
pub struct Ctx {
    pub root: PathBuf,
    pub seconds: f64,
    pub conns: usize,
    pub users: usize,
    /// Calls per variant of the in-process instantiation measurement.
    pub instantiations: usize,
    quick: bool,
}

impl Ctx {
    /// How long one throughput measurement runs.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// The untimed warm-up before a measurement.
    pub fn warmup(&self) -> Duration {
        Duration::from_millis(if self.quick { 100 } else { 300 })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The plugins the host loads: the embedded defaults' `[plugins.*]` plus hello.
fn plugin_names() -> Result<Vec<String>> {
    let doc: toml::Table = kirana::config::DEFAULTS
        .parse()
        .context("parsing the embedded defaults")?;
    let mut names: Vec<String> = match doc.get("plugins") {
        Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    };
    names.push("hello".into());
    Ok(names)
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("==> {cargo} {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}

/// Builds the host, the Rust plugins with cargo and the Python ones (a
/// `plugins/NAME/app.py` without a Cargo.toml) with scripts/build-python.
fn build(root: &Path, plugins: &[String]) -> Result<()> {
    cargo(root, &["build", "--release", "-p", "kirana"])?;
    let is_python = |p: &str| {
        let dir = root.join("plugins").join(p);
        dir.join("app.py").is_file() && !dir.join("Cargo.toml").exists()
    };
    let (python, rust): (Vec<&String>, Vec<&String>) = plugins.iter().partition(|p| is_python(p));
    let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
    for p in &rust {
        args.push("-p");
        args.push(p);
    }
    cargo(root, &args)?;
    if python.is_empty() {
        return Ok(());
    }
    eprintln!(
        "==> scripts/build-python {}",
        python
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = Command::new("bash")
        .arg(root.join("scripts/build-python"))
        .args(python.iter().map(|s| s.as_str()))
        .current_dir(root)
        .status()
        .context("running scripts/build-python")?;
    if !status.success() {
        bail!("scripts/build-python failed (componentize-py: pip install componentize-py==0.25.1)");
    }
    Ok(())
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = host::status_kib(&meminfo, "MemTotal:")
        .map(|k| format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "? GiB".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {mem} RAM, Linux {}",
        kernel.trim()
    )
}

fn now_utc() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "?".into())
}

/// Collects the rows of a section, or one row saying why it failed.
struct Report {
    rows: Vec<Row>,
    failed: bool,
}

impl Report {
    fn add(&mut self, item: u8, name: &str, result: Result<Vec<Row>>) {
        match result {
            Ok(rows) => self.rows.extend(rows),
            Err(e) => {
                eprintln!("!! {name} failed: {e:#}");
                let first = format!("{e:#}");
                let first = first.lines().next().unwrap_or_default().to_string();
                self.rows
                    .push(Row::unavailable(item, name, format!("failed: {first}")));
                self.failed = true;
            }
        }
    }

    fn skip(&mut self, item: u8, name: &str, why: &str) {
        self.rows.push(Row::unavailable(item, name, why));
    }
}

/// Samples the host's resident memory until stopped; the largest value seen.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let task = {
            let (stop, max) = (stop.clone(), max.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(kib) = host::rss_kib(pid) {
                        max.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Self { stop, max, task }
    }

    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.max.load(Ordering::Relaxed)
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

async fn run(args: Args) -> Result<bool> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the bench crate has no parent directory")?
        .to_path_buf();
    let plugins = plugin_names()?;
    if !args.no_build {
        build(&root, &plugins)?;
    }
    let seconds = args
        .seconds
        .unwrap_or(if args.quick { 1.0 } else { 4.0 })
        .max(0.2);
    let ctx = Ctx {
        root: root.clone(),
        seconds,
        conns: args.connections.max(1),
        users: args.users.max(1),
        instantiations: if args.quick { 400 } else { 2000 },
        quick: args.quick,
    };
    let on = |s: Section| args.only.is_empty() || args.only.contains(&s);
    let work = tempfile::Builder::new()
        .prefix("kirana-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let work_dir = work.path().to_path_buf();
    let cache = work_dir.join("cache");
    let started = Instant::now();
    let load_before = loadavg();
    let mut report = Report {
        rows: Vec::new(),
        failed: false,
    };

    // The SQLite host: started through the restart measurement when that is selected.
    let sqlite_spec = HostSpec {
        label: "sqlite".into(),
        data_dir: work_dir.join("sqlite-data"),
        cache_dir: cache.clone(),
        database_url: String::new(),
        hello_mode: "reuse",
        extra: String::new(),
    };
    let needs_sqlite = [
        Section::Overhead,
        Section::Shop,
        Section::Checkout,
        Section::Swap,
        Section::Search,
    ]
    .into_iter()
    .any(on);
    let mut sqlite: Option<Host> = None;
    if on(Section::Restart) {
        eprintln!("==> restart to ready: first start, cold compile, warm cache");
        match restart::measure(&ctx, &work_dir, &sqlite_spec).await {
            Ok((host, rows)) => {
                report.rows.extend(rows);
                sqlite = Some(host);
            }
            Err(e) => report.add(6, "restart to ready", Err(e)),
        }
    } else if needs_sqlite {
        eprintln!("==> starting the SQLite host");
        match Host::start(&root, &sqlite_spec, &work_dir).await {
            Ok(h) => sqlite = Some(h),
            Err(e) => report.add(3, "SQLite host", Err(e)),
        }
    }

    if let Some(host) = &sqlite {
        if on(Section::Overhead) {
            eprintln!("==> platform overhead, reuse");
            report.add(
                1,
                "overhead reuse",
                overhead::measure(&ctx, host, "reuse").await,
            );
        }
        if on(Section::Shop) || on(Section::Checkout) || on(Section::Search) {
            let sampler = RssSampler::start(host.pid);
            shop_and_checkout(&ctx, &args, host, "SQLite", "sqlite", &mut report).await;
            let peak = sampler.finish().await;
            if on(Section::Restart) {
                let idle = report
                    .rows
                    .iter()
                    .find(|r| r.name == restart::RSS_IDLE)
                    .and_then(|r| r.number)
                    .unwrap_or(0.0);
                report.rows.push(
                    Row::new(6, "RSS under load (peak, SQLite shop)", mib(peak))
                        .baseline(format!("{} idle", mib(idle as u64)))
                        .ratio(peak as f64, idle)
                        .detail("sampled every 50 ms during items 3 and 4"),
                );
            }
        } else if on(Section::Restart) {
            report.skip(6, "RSS under load", "needs the shop or checkout section");
        }
        if on(Section::Swap) {
            eprintln!("==> swap under load");
            report.add(5, "swap under load", swap::measure(&ctx, host).await);
        }
    }
    if let Some(host) = sqlite.take() {
        if let Err(e) = host.stop().await {
            eprintln!("!! stopping the SQLite host: {e:#}");
        }
    }

    if on(Section::Overhead) {
        eprintln!("==> platform overhead, fresh");
        let spec = HostSpec {
            label: "fresh".into(),
            data_dir: work_dir.join("fresh-data"),
            hello_mode: "fresh",
            ..sqlite_spec.clone()
        };
        let result = async {
            let host = Host::start(&root, &spec, &work_dir).await?;
            let rows = overhead::measure(&ctx, &host, "fresh").await;
            host.stop().await?;
            rows
        }
        .await;
        report.add(1, "overhead fresh", result);
    }

    if on(Section::Shop) || on(Section::Checkout) || on(Section::Search) {
        if args.no_postgres {
            report.skip(3, "PostgreSQL", "skipped: --no-postgres");
        } else {
            match pg::PgDatabase::create(&args.postgres_url).await {
                Err(e) => report.skip(
                    3,
                    "PostgreSQL",
                    &format!(
                        "skipped: PostgreSQL unreachable ({})",
                        format!("{e:#}").lines().next().unwrap_or_default()
                    ),
                ),
                Ok(db) => {
                    eprintln!("==> PostgreSQL database {}", db.name);
                    let spec = HostSpec {
                        label: "postgres".into(),
                        data_dir: work_dir.join("pg-data"),
                        database_url: db.url.clone(),
                        ..sqlite_spec.clone()
                    };
                    match Host::start(&root, &spec, &work_dir).await {
                        Ok(host) => {
                            shop_and_checkout(&ctx, &args, &host, "PostgreSQL", "pg", &mut report)
                                .await;
                            if let Err(e) = host.stop().await {
                                eprintln!("!! stopping the PostgreSQL host: {e:#}");
                            }
                        }
                        Err(e) => report.add(3, "PostgreSQL host", Err(e)),
                    }
                    if let Err(e) = db.drop().await {
                        eprintln!("!! dropping the PostgreSQL database: {e:#}");
                    }
                }
            }
        }
    }

    if on(Section::Python) {
        eprintln!("==> the Python plugin next to a Rust one");
        report.add(
            7,
            "python plugin",
            python::measure(&ctx, &work_dir, &sqlite_spec).await,
        );
    }

    if on(Section::Instantiate) {
        eprintln!("==> instantiate, in-process");
        report.add(
            2,
            "instantiate",
            instantiate::measure(&ctx, &work_dir, &cache).await,
        );
    }

    let load_after = loadavg();
    let command: Vec<String> = std::env::args().collect();
    println!();
    println!("Kirana benchmarks, {}", now_utc());
    println!("machine: {}", machine());
    println!(
        "load average (1/5/15 min): {load_before} before, {load_after} after; {} s per figure, {} connections, {} client threads, {} users; took {:.0} s",
        ctx.seconds,
        ctx.conns,
        args.client_threads,
        ctx.users,
        started.elapsed().as_secs_f64()
    );
    println!("command: {}", command.join(" "));
    println!();
    print!("{}", table::render(&report.rows));
    let missed: Vec<&str> = report
        .rows
        .iter()
        .filter(|r| r.met() == Some(false))
        .map(|r| r.name.as_str())
        .collect();
    println!();
    if missed.is_empty() {
        println!("every measured target is met");
    } else {
        println!("targets missed: {}", missed.join("; "));
    }
    Ok(!report.failed)
}

/// Items 3 and 4 on one host.
async fn shop_and_checkout(
    ctx: &Ctx,
    args: &Args,
    host: &Host,
    db: &str,
    tag: &str,
    report: &mut Report,
) {
    let on = |s: Section| args.only.is_empty() || args.only.contains(&s);
    let api = match Api::new(host.url("")) {
        Ok(a) => a,
        Err(e) => return report.add(3, &format!("{db} setup"), Err(e)),
    };
    eprintln!("==> {db}: setting up {} customers and stock", ctx.users);
    let run_tag = format!("{tag}{}", std::process::id());
    let shop = match shop::setup(&api, ctx, &run_tag).await {
        Ok(s) => s,
        Err(e) => return report.add(3, &format!("{db} setup"), Err(e)),
    };
    eprintln!("==> {db}: native baseline");
    let base = match shop::baseline(ctx, host, db).await {
        Ok((base, row)) => {
            report.rows.push(row);
            base
        }
        Err(e) => return report.add(3, &format!("{db} baseline"), Err(e)),
    };
    if on(Section::Shop) {
        eprintln!("==> {db}: shop routes");
        let result = shop::routes(ctx, host, &shop, db, base).await;
        report.add(3, &format!("{db} shop routes"), result);
    }
    if on(Section::Search) {
        eprintln!("==> {db}: search");
        let result = search::measure(ctx, host, db, base).await;
        report.add(3, &format!("{db} search"), result);
    }
    if on(Section::Checkout) {
        eprintln!("==> {db}: checkout");
        let plain = shop::checkout(ctx, host, &shop, db, base, false).await;
        report.add(4, &format!("{db} checkout"), plain.map(|r| vec![r]));
        let keyed = shop::checkout(ctx, host, &shop, db, base, true).await;
        report.add(4, &format!("{db} keyed checkout"), keyed.map(|r| vec![r]));
    }
}
