//! `kirana`: the host binary and the operator's command line.

mod cli;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use kirana::app::App;
use kirana::config::Config;
use kirana::telemetry;

/// mimalloc instead of glibc malloc: many small allocations cross threads here
/// (request bodies, rows, wasm results), where glibc's arenas cost ~15% of host CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kirana",
    version,
    about = "Grocery quick-commerce backend on WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve with the embedded defaults, merged with FILE if given.
    Serve {
        #[arg(long, short, env = "KIRANA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Build the workspace's plugins when missing or stale, then serve the seeded shop
    /// with the freshly built plugins live (registry.follow_files).
    Up {
        #[arg(long, short, env = "KIRANA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// `kirana up`, then watch the plugins' sources: a plugin that changes is rebuilt
    /// and swapped in inside the running host, with no restart.
    Dev {
        #[arg(long, short, env = "KIRANA_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Build the workspace's plugins to wasm32-wasip2.
    Build,
    /// Operate the plugins of a running host: list, inspect, install, enable (or canary),
    /// promote, disable, rollback, delete.
    Plugins(cli::PluginsArgs),
    /// Create a new plugin crate from the template.
    New {
        #[command(subcommand)]
        what: cli::NewCmd,
    },
}

/// How long mimalloc keeps memory it freed before giving it back to the system. Its own
/// default, a second, kept 30–70 MiB of freed memory resident in a host that had just
/// served a burst (BENCHMARKS.md, "The allocator's resident memory").
const ALLOCATOR_PURGE_DELAY_MS: std::ffi::c_long = 100;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the same in v2 and v3; the Rust
/// bindings do not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's purge delay, unless the operator chose one with
/// `MIMALLOC_PURGE_DELAY` (mimalloc reads that itself).
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's global options; any delay is a valid value.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS) };
    }
}

fn main() -> Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { config } => serve(config.as_deref()),
        Cmd::Up { config } => {
            let mut loaded = Config::load_development(config.as_deref())?;
            build_plugins(&loaded.plugins.keys().cloned().collect::<Vec<_>>())?;
            // Development: the plugins just built are what should run.
            loaded.registry.follow_files = true;
            serve_config(loaded, None)
        }
        Cmd::Dev { config } => {
            let mut loaded = Config::load_development(config.as_deref())?;
            let root = workspace_root()?;
            let sources = cli::dev::sources(&root, &loaded);
            build_plugins(
                &sources
                    .iter()
                    .map(|s| s.package.clone())
                    .collect::<Vec<_>>(),
            )?;
            loaded.registry.follow_files = true;
            serve_config(loaded, Some((root, sources)))
        }
        Cmd::Build => {
            let loaded = Config::load(None)?;
            build_plugins(&loaded.plugins.keys().cloned().collect::<Vec<_>>())
        }
        Cmd::Plugins(args) => cli::exit_on_error(cli::run_plugins(args)),
        Cmd::New { what } => cli::exit_on_error(cli::run_new(what, workspace_root)),
    }
}

fn serve(config: Option<&Path>) -> Result<()> {
    serve_config(Config::load(config)?, None)
}

/// Serves until a signal; with `watch` (`kirana dev`), also rebuilds and swaps in the
/// plugins whose sources change.
fn serve_config(mut config: Config, watch: Option<(PathBuf, Vec<cli::dev::Source>)>) -> Result<()> {
    config.check_secrets()?;
    let token_file = config.ensure_development_operator_token()?;
    telemetry::init(&config.log_format, &config.log_level);
    if config.dev {
        development_banner(&config, token_file.as_deref());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let app = App::start(config).await?;
        println!("kirana is serving on http://{}  (Ctrl-C to stop)", app.addr);
        if let Some((root, sources)) = watch {
            let platform = app.platform.clone();
            tokio::spawn(async move {
                if let Err(e) = cli::dev::watch(root, platform, sources).await {
                    eprintln!("kirana dev: {e:#}; serving on without rebuilding");
                }
            });
        }
        app.run_until_signal().await
    })
}

/// Says loudly that this shop runs on published development values.
fn development_banner(config: &Config, token_file: Option<&Path>) {
    let token = match token_file {
        Some(path) => format!(
            "operator token (for `kirana plugins ...`): in {} (export KIRANA_TOKEN=$(cat {}))",
            path.display(),
            path.display()
        ),
        None => "operator token: the one you configured".to_string(),
    };
    eprintln!(
        "\n  DEVELOPMENT MODE: published development secrets (config/development.toml),\n  \
         loopback only ({}), OTP codes and reset tokens shown in the admin outbox.\n  \
         Never expose this shop; production is `kirana serve` with your own secrets.\n  \
         {token}\n",
        config.listen
    );
}

/// Runs cargo for the plugin crates of this workspace, then componentize-py for its
/// Python plugins; each decides what is stale, so an unchanged tree costs about a second.
fn build_plugins(names: &[String]) -> Result<()> {
    let root = workspace_root()?;
    ensure_wasm_target()?;
    let crates: Vec<&String> = names
        .iter()
        .filter(|n| {
            root.join("plugins")
                .join(n.as_str())
                .join("Cargo.toml")
                .exists()
        })
        .collect();
    if crates.is_empty() && cli::python_plugins(&root, names).is_empty() {
        bail!("no plugins found under {}/plugins", root.display());
    }
    // A shop of Python plugins only has no cargo step.
    if !crates.is_empty() {
        let step = cli::progress::Step::start(format!(
            "building {} plugin(s) for wasm32-wasip2: {}",
            crates.len(),
            crates
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&root)
            .args(["build", "--release", "--target", "wasm32-wasip2"]);
        for c in &crates {
            cmd.args(["-p", c.as_str()]);
        }
        let status = step
            .run(&mut cmd)
            .context("running cargo (is Rust installed?)")?;
        if !status.success() {
            step.finish("the build failed");
            bail!("building the plugins failed (see cargo's output above)");
        }
        let took = cli::progress::seconds(step.elapsed());
        step.finish(format!("plugin crates built in {took}"));
    }
    cli::build_python_plugins(&root, names)?;
    eprintln!("==> plugins are up to date");
    Ok(())
}

fn workspace_root() -> Result<PathBuf> {
    let mut dir = std::env::current_dir()?;
    loop {
        if dir.join("Cargo.toml").exists()
            && dir.join("plugins").is_dir()
            && dir.join("wit").is_dir()
        {
            return Ok(dir);
        }
        if !dir.pop() {
            bail!("run this inside the Kirana repository (no Cargo.toml with plugins/ and wit/ found above the current directory)");
        }
    }
}

fn ensure_wasm_target() -> Result<()> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(()); // no rustup: let cargo report a missing target itself
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        return Ok(());
    }
    eprintln!("==> installing the wasm32-wasip2 target (once)");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("`rustup target add wasm32-wasip2` failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option number is mimalloc's purge delay: it holds v3's default of a second
    /// until the host sets it, and the host's value afterwards.
    #[test]
    fn the_allocator_purge_delay_is_the_option_the_host_sets() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the operator's value, not the defaults, is in force
        }
        // SAFETY: reads one of mimalloc's global options.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if get() != ALLOCATOR_PURGE_DELAY_MS {
            assert_eq!(get(), 1000, "mimalloc v3's default purge delay");
        }
        tune_allocator();
        assert_eq!(get(), ALLOCATOR_PURGE_DELAY_MS);
    }
}
