//! `kirana up` and `kirana build` for the plugins written in Python (a directory
//! `plugins/NAME/` with an `app.py`): componentize-py builds them through
//! `scripts/build-python`, which skips a plugin whose sources did not change.
//!
//! componentize-py comes from PyPI. When it is missing it is installed with pip, once,
//! as the wasm32-wasip2 target is with rustup; when that fails too, the Python plugins
//! are skipped with one line saying so and the shop starts without them (their routes
//! answer 404 and `kirana plugins list` shows them not loaded), since a developer
//! without Python should still get the rest of the shop.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The componentize-py release the plugins are built and tested with.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The names among `names` that are Python plugins of the workspace at `root`.
pub fn python_plugins(root: &Path, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| is_python_plugin(&root.join("plugins").join(n.as_str())))
        .cloned()
        .collect()
}

/// A plugin directory written in Python: an `app.py` and no crate manifest.
pub fn is_python_plugin(dir: &Path) -> bool {
    dir.join("app.py").is_file() && !dir.join("Cargo.toml").exists()
}

/// True when componentize-py can be run (the command, or the module of `python3`).
fn componentize_available() -> bool {
    let quiet = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    quiet(Command::new("componentize-py").arg("--version"))
        || quiet(Command::new("python3").args(["-c", "import componentize_py"]))
}

/// Builds the Python plugins among `names` into `target/wasm32-wasip2/release`.
pub fn build_python_plugins(root: &Path, names: &[String]) -> Result<()> {
    let python = python_plugins(root, names);
    if python.is_empty() {
        return Ok(());
    }
    if !componentize_available() {
        eprintln!("==> installing componentize-py {COMPONENTIZE_PY} for the Python plugins (once)");
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
            .status()
            .is_ok_and(|s| s.success());
        if !installed || !componentize_available() {
            eprintln!(
                "==> skipping the Python plugins ({}): componentize-py is not installed and \
                 `python3 -m pip install componentize-py=={COMPONENTIZE_PY}` failed",
                python.join(", ")
            );
            return Ok(());
        }
    }
    let step = super::progress::Step::start(format!(
        "building {} Python plugin(s) with componentize-py: {}",
        python.len(),
        python.join(", ")
    ));
    let status = step
        .run(
            Command::new("bash")
                .arg(root.join("scripts/build-python"))
                .args(&python)
                .current_dir(root),
        )
        .context("running scripts/build-python (is bash installed?)")?;
    if !status.success() {
        step.finish("building the Python plugins failed");
        bail!("building the Python plugins failed (see componentize-py's output above)");
    }
    let took = super::progress::seconds(step.elapsed());
    step.finish(format!("Python plugins ready in {took}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_with_an_app_and_no_crate_are_python_plugins() {
        let root = tempfile::tempdir().expect("temp dir");
        let make = |name: &str, files: &[&str]| {
            let dir = root.path().join("plugins").join(name);
            std::fs::create_dir_all(&dir).expect("plugin dir");
            for f in files {
                std::fs::write(dir.join(f), "").expect("file");
            }
        };
        make("promotions", &["app.py"]);
        make("catalog", &["Cargo.toml"]);
        make("odd", &["app.py", "Cargo.toml"]);
        let names: Vec<String> = ["promotions", "catalog", "odd", "missing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(python_plugins(root.path(), &names), ["promotions"]);
    }
}
