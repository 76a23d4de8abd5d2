//! `kirana dev`: the shop of `kirana up`, plus a watcher over the sources of its plugins.
//! When a plugin's files change, only that plugin is rebuilt (cargo for a crate,
//! `scripts/build-python` for a Python plugin) and the new build is swapped in *inside
//! the running host* ([`ops::reload`]): no restart, so sessions, SSE streams and
//! requests in flight carry on. A build that fails, or a `migrate` that fails, leaves
//! the running build live; the compiler's output is on the terminal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};

use kirana::config::Config;
use kirana::registry::ops;
use kirana::registry::Platform;

use super::progress::{seconds, Step};

/// How long the watcher waits for more changes before it builds (an editor's save is
/// several events: write, rename, chmod).
const SETTLE: Duration = Duration::from_millis(300);

/// How a plugin's sources are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A crate: `cargo build --release --target wasm32-wasip2 -p PACKAGE`.
    Rust,
    /// `plugins/NAME/app.py`: `scripts/build-python NAME`.
    Python,
}

/// One configured plugin whose sources are in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The plugin's name in the configuration (`[plugins.NAME]`).
    pub plugin: String,
    /// The build's name: the crate's package, or the Python plugin's directory, which
    /// is also the stem of its `.wasm` file.
    pub package: String,
    pub dir: PathBuf,
    pub kind: Kind,
}

/// The configured plugins whose `.wasm` file is built from this workspace: the file
/// `STEM.wasm` comes from `plugins/STEM` (a crate, or a Python plugin's `app.py`) or
/// from the workspace member whose package is named STEM.
pub fn sources(root: &Path, config: &Config) -> Vec<Source> {
    let members = super::scaffold::workspace_packages(root);
    config
        .plugins
        .iter()
        .filter(|(_, pc)| pc.enabled)
        .filter_map(|(name, pc)| {
            let stem = pc.file.file_stem()?.to_str()?.to_string();
            let dir = root.join("plugins").join(&stem);
            let (dir, kind) = if super::python::is_python_plugin(&dir) {
                (dir, Kind::Python)
            } else if dir.join("Cargo.toml").is_file() {
                (dir, Kind::Rust)
            } else {
                let (_, member) = members.iter().find(|(pkg, _)| *pkg == stem)?;
                (root.join(member), Kind::Rust)
            };
            Some(Source {
                plugin: name.clone(),
                package: stem,
                dir,
                kind,
            })
        })
        .collect()
}

/// The sources a changed `path` belongs to: none for build output, caches and editor
/// files (judged inside the source's directory, wherever the workspace lives).
fn owners<'a>(sources: &'a [Source], path: &'a Path) -> impl Iterator<Item = &'a Source> + 'a {
    sources.iter().filter(move |s| {
        let Ok(inside) = path.strip_prefix(&s.dir) else {
            return false;
        };
        let noise = inside.components().any(|c| {
            let c = c.as_os_str().to_string_lossy();
            c == "target" || c == "__pycache__" || c.starts_with('.')
        }) || inside
            .file_name()
            .map(|f| f.to_string_lossy())
            .is_some_and(|f| f.ends_with('~'));
        !noise
    })
}

/// Builds one plugin with its toolchain, its output on this terminal (above the
/// step's spinner); whether it built.
fn build(root: &Path, source: &Source, step: &Step) -> Result<bool> {
    let status = match source.kind {
        Kind::Rust => step
            .run(
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                    .args(["build", "--release", "--target", "wasm32-wasip2", "-p"])
                    .arg(&source.package)
                    .current_dir(root),
            )
            .context("running cargo")?,
        Kind::Python => step
            .run(
                Command::new("bash")
                    .arg(root.join("scripts/build-python"))
                    .arg(&source.package)
                    .current_dir(root),
            )
            .context("running scripts/build-python")?,
    };
    Ok(status.success())
}

/// Watches the sources and swaps each rebuilt plugin into `platform` until the
/// process ends. Returns only when the watcher cannot start.
pub async fn watch(root: PathBuf, platform: Arc<Platform>, sources: Vec<Source>) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !event.kind.is_access() {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        }
    })
    .context("starting the file watcher")?;
    for s in &sources {
        watcher
            .watch(&s.dir, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", s.dir.display()))?;
    }
    eprintln!(
        "==> kirana dev: watching {}",
        sources
            .iter()
            .map(|s| format!("{} ({})", s.plugin, rel(&root, &s.dir)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    while let Some(first) = rx.recv().await {
        let mut changed: BTreeSet<usize> = BTreeSet::new();
        let mut note = |path: &Path| {
            for s in owners(&sources, path) {
                if let Some(i) = sources.iter().position(|x| x == s) {
                    changed.insert(i);
                }
            }
        };
        note(&first);
        while let Ok(Some(path)) = tokio::time::timeout(SETTLE, rx.recv()).await {
            note(&path);
        }
        for i in changed {
            rebuild(&root, &platform, &sources[i]).await;
        }
    }
    Ok(())
}

/// Rebuilds one plugin and swaps it in, saying how long each step took.
async fn rebuild(root: &Path, platform: &Arc<Platform>, source: &Source) {
    let name = source.plugin.clone();
    let tool = match source.kind {
        Kind::Rust => "cargo",
        Kind::Python => "componentize-py",
    };
    let built = {
        let (root, source) = (root.to_path_buf(), source.clone());
        tokio::task::spawn_blocking(move || {
            let step = Step::start(format!(
                "{}: sources changed, building ({tool})",
                source.plugin
            ));
            let built = build(&root, &source, &step);
            (step, built)
        })
        .await
    };
    let (step, built) = match built {
        Ok(done) => done,
        Err(e) => {
            eprintln!("==> {name}: the build task failed: {e}; the running build stays live");
            return;
        }
    };
    let build_time = step.elapsed();
    match built {
        Ok(true) => step.finish(format!("{name}: built in {}", seconds(build_time))),
        Ok(false) => {
            step.finish(format!(
                "{name}: the build failed (above); the running build stays live"
            ));
            return;
        }
        Err(e) => {
            step.finish(format!(
                "{name}: could not build: {e:#}; the running build stays live"
            ));
            return;
        }
    }
    let Some(pc) = platform.config.plugins.get(&name) else {
        return;
    };
    let path = platform.config.plugin_path(pc);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("==> {name}: reading {}: {e}", path.display());
            return;
        }
    };
    let bytes = match kirana::registry::with_assets(bytes, pc) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("==> {name}: {e:#}; the running build stays live");
            return;
        }
    };
    let swap = Step::start(format!(
        "{name}: compiling the component and swapping it in"
    ));
    match ops::reload(platform, &name, bytes, "kirana dev").await {
        Ok(version) => {
            let swap_time = swap.elapsed();
            swap.finish(format!(
                "{name} {version} is live: built in {}, swapped in {} ms",
                seconds(build_time),
                swap_time.as_millis()
            ))
        }
        Err(e) => swap.finish(format!(
            "{name}: not swapped in: {e}; the running build stays live"
        )),
    }
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(plugin: &str, dir: &str) -> Source {
        Source {
            plugin: plugin.into(),
            package: plugin.into(),
            dir: PathBuf::from(dir),
            kind: Kind::Rust,
        }
    }

    #[test]
    fn a_change_belongs_to_the_plugin_whose_directory_holds_it() {
        let sources = [
            source("cart", "/w/plugins/cart"),
            source("hello", "/tmp/.tmpXyZ/examples/hello"),
        ];
        let who = |p: &str| -> Vec<String> {
            owners(&sources, Path::new(p))
                .map(|s| s.plugin.clone())
                .collect()
        };
        assert_eq!(who("/w/plugins/cart/src/lib.rs"), ["cart"]);
        // A workspace under a hidden directory (a temporary one) is still watched.
        assert_eq!(who("/tmp/.tmpXyZ/examples/hello/src/lib.rs"), ["hello"]);
        // Not a plugin's, or noise: build output, caches, editor files.
        assert!(who("/w/plugins/cartography/src/lib.rs").is_empty());
        assert!(who("/w/plugin-sdk/src/lib.rs").is_empty());
        assert!(who("/w/plugins/cart/target/x").is_empty());
        assert!(who("/w/plugins/cart/src/__pycache__/a.pyc").is_empty());
        assert!(who("/w/plugins/cart/src/.lib.rs.swp").is_empty());
        assert!(who("/w/plugins/cart/src/lib.rs~").is_empty());
    }
}
