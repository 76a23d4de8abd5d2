//! The host under test: `target/release/kirana serve --config <tmp toml>` as a child
//! process on a loopback port the kernel picks, stopped when the guard is dropped
//! (also when the benchmark fails half-way).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::load::Usage;

/// How long a start may take (a cold compile of every plugin on a busy machine is slow).
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Where cargo puts the plugins' components, under the workspace `root`.
pub fn plugin_dir(root: &Path) -> PathBuf {
    root.join("target/wasm32-wasip2/release")
}

/// What differs between the hosts a run starts.
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// Written into the config file's name and the error messages.
    pub label: String,
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// Empty for SQLite.
    pub database_url: String,
    /// `fresh` or `reuse`, for the hello plugin.
    pub hello_mode: &'static str,
    /// More TOML appended to the file (tables not otherwise in it, like
    /// `[plugins.promotions]`: the host merges them over its embedded defaults).
    pub extra: String,
}

impl HostSpec {
    /// The configuration file: the embedded defaults (every shop plugin, `reuse`) plus
    /// hello, quiet logs, no rate limits, and a cheap password hash (signing up the
    /// benchmark's users is setup, not a measured figure). Development mode (loopback
    /// only) supplies the admin password and payment secrets; the operator token is the
    /// bench's own.
    pub fn toml(&self, plugin_dir: &Path) -> String {
        format!(
            r#"listen = "127.0.0.1:0"
dev = true
data_dir = {data}
cache_dir = {cache}
database_url = {db}
plugin_dir = {plugins}
log_level = "warn"

[identity]
argon2_memory_kib = 1024
argon2_iterations = 1

[rate_limit]
enabled = false

[admin]
operator_token = "{operator}"

[plugins.hello]
file = "hello.wasm"
instances = "{mode}"
grants = ["kv", "realtime", "mail"]

{extra}"#,
            extra = self.extra,
            operator = crate::api::OPERATOR_TOKEN,
            data = quote(&self.data_dir.display().to_string()),
            cache = quote(&self.cache_dir.display().to_string()),
            db = quote(&self.database_url),
            plugins = quote(&plugin_dir.display().to_string()),
            mode = self.hello_mode,
        )
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A running host. Dropping it kills the process.
pub struct Host {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// From spawning the process to the first 200 of `/ready`.
    pub ready_after: Duration,
    log: PathBuf,
}

impl Host {
    /// Starts the host and waits until `/ready` answers 200.
    pub async fn start(root: &Path, spec: &HostSpec, work: &Path) -> Result<Host> {
        let bin = root.join("target/release/kirana");
        if !bin.exists() {
            bail!(
                "{} is missing: run `cargo build --release -p kirana` (or the bench without --no-build)",
                bin.display()
            );
        }
        let config = work.join(format!("{}.toml", spec.label));
        std::fs::write(&config, spec.toml(&plugin_dir(root)))
            .with_context(|| format!("writing {}", config.display()))?;
        let log = work.join(format!("{}.log", spec.label));
        let mut log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let stderr = log_file
            .try_clone()
            .context("duplicating the log file handle")?;

        let started = Instant::now();
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(root)
            .env_remove("RUST_LOG")
            .env_remove("KIRANA_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the host's stdout was not captured"))?;
        // The host prints its address on stdout once it serves; the same pipe carries
        // its log lines, so a thread copies it to the log file until the process ends.
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = serving_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let _ = writeln!(log_file, "{line}");
            }
        });
        let mut host = Host {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            ready_after: Duration::ZERO,
            log,
        };
        host.addr = loop {
            match rx.try_recv() {
                Ok(addr) => break addr,
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    bail!(
                        "the {} host exited before serving:\n{}",
                        spec.label,
                        host.log_tail()
                    )
                }
            }
            if let Some(status) = host.child.try_wait().context("polling the host")? {
                bail!(
                    "the {} host exited with {status} before serving:\n{}",
                    spec.label,
                    host.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "the {} host did not serve within {READY_TIMEOUT:?}:\n{}",
                    spec.label,
                    host.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let client = reqwest::Client::new();
        let ready = format!("http://{}/ready", host.addr);
        loop {
            if let Ok(r) = client.get(&ready).send().await {
                if r.status().as_u16() == 200 {
                    break;
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "the {} host was not ready within {READY_TIMEOUT:?}:\n{}",
                    spec.label,
                    host.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        host.ready_after = started.elapsed();
        Ok(host)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Resident memory of the host process in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid)
    }

    /// Stops the host with SIGTERM (a graceful shutdown), SIGKILL after 15 s.
    pub async fn stop(mut self) -> Result<()> {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet
        // (the guard still owns it), so the pid cannot belong to another process.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self
                .child
                .try_wait()
                .context("waiting for the host")?
                .is_some()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child.kill().context("killing the host")?;
        self.child.wait().context("reaping the host")?;
        Ok(())
    }

    /// The last lines of the host's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time process `pid` has used so far (user + system, all threads).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let n = stat_ticks(&stat).ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat: {stat}"))?;
    Ok(ticks(n))
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks. The
/// command name (field 2) may hold spaces, so fields are counted after its `)`.
pub fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Runs a load measurement against `host` and records the CPU time the host used, and
/// where the rest of the machine's went meanwhile (see [`Usage`]).
pub async fn on_host<F>(host: &Host, run: F) -> Result<crate::load::Stats>
where
    F: std::future::Future<Output = Result<crate::load::Stats>>,
{
    let before = Usage::now(host.pid)?;
    let mut stats = run.await?;
    stats.cpu = Usage::now(host.pid)?.since(&before);
    Ok(stats)
}

impl Usage {
    /// The usage so far of the host `host_pid`, this process, local PostgreSQL and the
    /// machine, read from `/proc`.
    pub fn now(host_pid: u32) -> Result<Usage> {
        Ok(Usage {
            host: cpu_time(host_pid)?,
            client: cpu_time(std::process::id())?,
            postgres: postgres_cpu(),
            machine: machine_busy()?,
        })
    }
}

/// Clock ticks as time.
fn ticks(n: u64) -> Duration {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Duration::from_secs_f64(n as f64 / hz)
}

/// Busy time of all CPUs together so far.
pub fn machine_busy() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let busy = stat
        .lines()
        .next()
        .and_then(busy_ticks)
        .ok_or_else(|| anyhow!("unexpected /proc/stat"))?;
    Ok(ticks(busy))
}

/// The busy ticks of `/proc/stat`'s `cpu` line: user, nice, system, irq and softirq
/// (guest time is already inside user; idle, iowait and steal are not this machine's
/// work).
pub fn busy_ticks(line: &str) -> Option<u64> {
    let mut f = line.strip_prefix("cpu ")?.split_whitespace();
    let mut next = || f.next()?.parse::<u64>().ok();
    let (user, nice, system, _idle, _iowait, irq, softirq) = (
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
    );
    Some(user + nice + system + irq + softirq)
}

/// CPU time of every local process named `postgres` so far.
pub fn postgres_cpu() -> Duration {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let total = procs
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| command(stat) == Some("postgres"))
        .filter_map(|stat| stat_ticks(&stat))
        .sum();
    ticks(total)
}

/// The command name (field 2, in parentheses) of a `/proc/<pid>/stat` line.
fn command(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// `VmRSS` of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status_kib(&status, "VmRSS:").ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// The value of a `Name:   1234 kB` line of `/proc/<pid>/status`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The address in the host's `kirana is serving on http://ADDR` line.
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("kirana is serving on http://").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ticks_count_work_and_leave_out_idle_iowait_and_steal() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let line = "cpu  100 2 30 5000 40 1 7 900 50 0";
        assert_eq!(busy_ticks(line), Some(100 + 2 + 30 + 1 + 7));
        assert_eq!(busy_ticks("cpu0 100 2 30 5000 40 1 7 900 50 0"), None);
        assert_eq!(busy_ticks("cpu  100 2"), None);
    }

    #[test]
    fn the_command_name_may_hold_spaces_and_parentheses() {
        let stat = "4242 (postgres) S 1 4242 4242 0 -1 4194560 0 0 0 0 11 22 0 0";
        assert_eq!(command(stat), Some("postgres"));
        assert_eq!(stat_ticks(stat), Some(33));
        assert_eq!(command("7 (tokio (rt) 1) R 1"), Some("tokio (rt) 1"));
        assert_eq!(command("7 no command"), None);
    }

    #[test]
    fn usage_since_an_earlier_reading_is_the_difference() {
        let s = Duration::from_secs;
        let before = Usage {
            host: s(1),
            client: s(2),
            postgres: s(3),
            machine: s(10),
        };
        let after = Usage {
            host: s(4),
            client: s(3),
            postgres: s(3),
            machine: s(20),
        };
        let used = after.since(&before);
        assert_eq!(
            (used.host, used.client, used.postgres, used.machine),
            (s(3), s(1), s(0), s(10))
        );
        // Readings of this process and of the machine go forward while it works (the
        // clock ticks are 10 ms; a busy machine may take a while to give this one some).
        let first = Usage::now(std::process::id()).expect("reading /proc");
        let started = Instant::now();
        let used = loop {
            std::hint::black_box(started.elapsed());
            let used = Usage::now(std::process::id())
                .expect("reading /proc")
                .since(&first);
            let moved = used.client > Duration::ZERO && used.machine > Duration::ZERO;
            if moved || started.elapsed() > Duration::from_secs(20) {
                break used;
            }
        };
        assert!(used.client > Duration::ZERO, "{used:?}");
        assert!(used.machine > Duration::ZERO, "{used:?}");
    }

    #[test]
    fn reads_the_serving_line() {
        assert_eq!(
            serving_addr("kirana is serving on http://127.0.0.1:41234  (Ctrl-C to stop)"),
            Some(SocketAddr::from(([127, 0, 0, 1], 41234)))
        );
        assert_eq!(serving_addr("WARN something else"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "4242 (kirana (x) y) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 9";
        assert_eq!(stat_ticks(stat), Some(175));
        assert_eq!(stat_ticks("garbage"), None);
    }

    #[test]
    fn reads_status_lines() {
        let s = "Name:\tkirana\nVmHWM:\t  90000 kB\nVmRSS:\t   81234 kB\n";
        assert_eq!(status_kib(s, "VmRSS:"), Some(81234));
        assert_eq!(status_kib(s, "VmHWM:"), Some(90000));
        assert_eq!(status_kib(s, "VmSwap:"), None);
    }

    #[test]
    fn config_is_valid_toml_with_quoted_paths() {
        let spec = HostSpec {
            label: "x".into(),
            data_dir: PathBuf::from("/tmp/a \"b\"/data"),
            cache_dir: PathBuf::from("/tmp/c"),
            database_url: String::new(),
            hello_mode: "fresh",
            extra: "[plugins.promotions]\ninstances = \"fresh\"\n".into(),
        };
        let doc: toml::Table = spec.toml(Path::new("/p")).parse().expect("valid toml");
        assert_eq!(doc["data_dir"].as_str(), Some("/tmp/a \"b\"/data"));
        assert_eq!(doc["plugins"]["hello"]["instances"].as_str(), Some("fresh"));
        assert_eq!(doc["rate_limit"]["enabled"].as_bool(), Some(false));
        assert_eq!(
            doc["plugins"]["promotions"]["instances"].as_str(),
            Some("fresh")
        );
    }
}
