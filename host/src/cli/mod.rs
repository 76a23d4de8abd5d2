//! The operator's commands: `kirana plugins ...` (a client of a running host's
//! `/admin/plugins` API), `kirana new plugin NAME` (a plugin from a template), the
//! Python half of `kirana up` / `kirana build` ([`build_python_plugins`]), and the
//! watcher of `kirana dev` ([`dev`]).

mod api;
pub mod dev;
mod errors;
mod format;
mod plugins;
pub mod progress;
mod python;
mod scaffold;
mod table;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

pub use python::{build_python_plugins, python_plugins};

/// Where `kirana serve` listens by default.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// `kirana plugins ...`: the connection options apply to every subcommand.
#[derive(Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    command: PluginsCmd,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Args)]
struct Connection {
    /// The running host's address (empty means the default).
    #[arg(
        long,
        env = "KIRANA_URL",
        default_value = DEFAULT_URL,
        global = true
    )]
    url: String,
    /// The operator token (config [admin] operator_token). Without it, the token
    /// `kirana up` keeps in ./data/operator-token is used when that file exists.
    #[arg(long, env = "KIRANA_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the host's JSON answer as is (for scripts) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for the host's answer (an install compiles the component).
    #[arg(long, value_name = "SECS", default_value_t = 120, global = true)]
    timeout: u64,
}

#[derive(Subcommand)]
enum PluginsCmd {
    /// Every installed plugin: state, live version, versions, traffic, canary.
    List,
    /// One plugin in full: versions, routes, subscriptions, grants, traffic, history.
    Inspect { name: String },
    /// Upload a component (.wasm): validated, compiled and stored, not yet live. With
    /// --assets DIR, the component and DIR's files go up as one bundle (a version's
    /// read-only assets, swapped and rolled back with it); a bundle file is uploaded as is.
    Install {
        file: PathBuf,
        #[arg(long, value_name = "DIR")]
        assets: Option<PathBuf>,
    },
    /// Make a version live (the newest installed when none is given), or with --canary
    /// send only PERCENT of the traffic to it.
    Enable {
        #[arg(value_name = "NAME[@VERSION]")]
        spec: String,
        /// Percentage of requests (1-99) for the new version; the rest stay on the live one.
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99))]
        canary: Option<u8>,
        /// Approve these grants for the plugin (comma-separated, e.g. kv,publish:order.created):
        /// what the version asks for beyond what was approved before. `install` lists them.
        #[arg(long, value_name = "GRANTS", value_delimiter = ',')]
        grant: Vec<String>,
    },
    /// Make the canary version live for all traffic.
    Promote { name: String },
    /// Stop serving a plugin: its routes answer 503 and its events wait in the outbox.
    Disable { name: String },
    /// Go back to the previously live version, or stop a running canary.
    Rollback { name: String },
    /// Delete an installed version (never the live one).
    Delete {
        #[arg(value_name = "NAME@VERSION")]
        spec: String,
    },
}

#[derive(Subcommand)]
pub enum NewCmd {
    /// A plugin in plugins/NAME: a Rust crate from templates/plugin, added to the
    /// workspace, or (--lang python) a Python plugin from templates/plugin-python.
    Plugin {
        /// Lower-case letters, digits and _, starting with a letter (at most 32).
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        /// The workspace root to create it in (default: found from the current directory).
        #[arg(long, hide = true)]
        root: Option<PathBuf>,
    },
}

/// Runs `kirana plugins ...`.
pub fn run_plugins(args: PluginsArgs) -> Result<()> {
    plugins::run(args.command, &args.conn)
}

/// Runs `kirana new ...`; `find_root` locates the workspace when `--root` is absent.
pub fn run_new(cmd: NewCmd, find_root: fn() -> Result<PathBuf>) -> Result<()> {
    match cmd {
        NewCmd::Plugin { name, root, lang } => {
            let root = match root {
                Some(r) => r,
                None => find_root()?,
            };
            let created = scaffold::create(&root, &name, lang)?;
            print!("{}", scaffold::next_steps(&name, &created, &root));
            Ok(())
        }
    }
}

/// Prints an error the way the operator commands do (`error: ...`, later lines
/// indented) and exits with status 1; passes success through.
pub fn exit_on_error(result: Result<()>) -> Result<()> {
    if let Err(e) = result {
        let text = format!("{e:#}");
        let mut lines = text.lines();
        eprintln!("error: {}", lines.next().unwrap_or("failed"));
        for line in lines {
            eprintln!("  {line}");
        }
        std::process::exit(1);
    }
    Ok(())
}
