//! `kirana new plugin NAME`: a ready plugin crate from `templates/plugin/`, added to the
//! workspace's members, or with `--lang python` a Python plugin from
//! `templates/plugin-python/` (built by `scripts/build-python`, no workspace change).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// The template, compiled in so the binary scaffolds the same crate wherever it runs.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../templates/plugin/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../templates/plugin/src/lib.rs.tmpl"),
    ),
];

/// The Python template: `{{name}}` in a path is the plugin's package directory.
const PYTHON_TEMPLATE: &[(&str, &str)] = &[
    (
        "app.py",
        include_str!("../../../templates/plugin-python/app.py.tmpl"),
    ),
    (
        "{{name}}/__init__.py",
        include_str!("../../../templates/plugin-python/plugin/__init__.py.tmpl"),
    ),
    (
        "{{name}}/plugin.py",
        include_str!("../../../templates/plugin-python/plugin/plugin.py.tmpl"),
    ),
    (
        "tests/test_plugin.py",
        include_str!("../../../templates/plugin-python/tests/test_plugin.py.tmpl"),
    ),
];

/// The language a new plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
}

/// Names a Python plugin's package may not take beyond the Rust list: Python keywords
/// and the modules a component is built with (the standard library is asked of
/// `python3` when it is there).
const PYTHON_RESERVED: &[&str] = &[
    "and",
    "app",
    "assert",
    "class",
    "componentize_py_async_support",
    "componentize_py_runtime",
    "componentize_py_types",
    "def",
    "del",
    "elif",
    "except",
    "finally",
    "from",
    "global",
    "import",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "poll_loop",
    "raise",
    "with",
    "wit_world",
];

/// Names a crate may not take: Rust keywords, the sysroot crates, and the template's own
/// dependencies (a crate cannot depend on a crate of its own name).
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "kirana",
    "kirana_sdk",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "serde",
    "serde_json",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Checks NAME against `^[a-z][a-z0-9_]{0,31}$` and the reserved words, with a hint.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = name.len() <= 32
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        let mut msg = format!(
            "invalid plugin name {name:?}: use 1 to 32 characters, a lower-case letter first, \
             then lower-case letters, digits or _ (like gift_cards)"
        );
        let suggestion: String = name
            .trim()
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c == '-' || c == ' ' { '_' } else { c })
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .skip_while(|c| !c.is_ascii_lowercase())
            .take(32)
            .collect();
        if !suggestion.is_empty() && suggestion != name && validate_name(&suggestion).is_ok() {
            msg.push_str(&format!("; did you mean {suggestion}?"));
        }
        bail!(msg);
    }
    if RESERVED.contains(&name) {
        bail!("{name:?} cannot be a plugin name: it is a Rust keyword or the name of a crate plugins depend on; pick another");
    }
    Ok(())
}

/// The extra checks of a Python plugin's name: its package directory is imported by
/// that name, so it must not be a keyword or shadow a module the plugin imports.
fn validate_python_name(name: &str) -> Result<()> {
    if PYTHON_RESERVED.contains(&name) {
        bail!("{name:?} cannot be a Python plugin's name: it is a Python keyword or a module the build uses; pick another");
    }
    let stdlib = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys; print(' '.join(getattr(sys, 'stdlib_module_names', ())))",
        ])
        .output();
    if let Ok(out) = stdlib {
        if String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|m| m == name)
        {
            bail!("{name:?} cannot be a Python plugin's name: it would shadow the standard library's {name} module; pick another (like shop_{name})");
        }
    }
    Ok(())
}

/// `gift_cards` → `GiftCards`.
pub fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Fills `{{name}}` and `{{Name}}` in a template file.
pub fn render(template: &str, name: &str) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{Name}}", &camel_case(name))
}

/// Adds `member` to `[workspace] members` in the text of a root Cargo.toml, after the
/// last `plugins/...` member when there is one, keeping the file's layout and comments.
/// `Ok(None)` when a member (or a `plugins/*` glob) already covers it.
pub fn add_member(manifest: &str, member: &str) -> Result<Option<String>> {
    let mut doc: toml_edit::DocumentMut = manifest
        .parse()
        .context("the workspace Cargo.toml is not valid TOML")?;
    let members = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(|m| m.as_array_mut())
        .ok_or_else(|| {
            anyhow!("the workspace Cargo.toml has no `[workspace] members = [...]` list")
        })?;
    let dir = member.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let covered = members
        .iter()
        .filter_map(|v| v.as_str())
        .any(|m| m.trim_end_matches('/') == member || (!dir.is_empty() && m == format!("{dir}/*")));
    if covered {
        return Ok(None);
    }
    let position = members
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            v.as_str()
                .is_some_and(|s| s.starts_with("plugins/") && !s.contains('*'))
        })
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(members.len());
    // One per line when the list is written one per line (indented like the others),
    // else inline after a space; comments attached to neighbours are not copied.
    let line_indent = members.iter().find_map(|v| {
        let prefix = v.decor().prefix().and_then(|p| p.as_str())?;
        prefix
            .rsplit_once('\n')
            .map(|(_, indent)| indent.to_string())
    });
    let mut value = toml_edit::Value::from(member);
    let prefix = match line_indent {
        Some(indent) => format!("\n{indent}"),
        None if members.is_empty() => String::new(),
        None => " ".into(),
    };
    value.decor_mut().set_prefix(prefix);
    value.decor_mut().set_suffix("");
    members.insert_formatted(position, value);
    Ok(Some(doc.to_string()))
}

/// The package names of the members of the workspace at `root` (with `-` read as `_`),
/// with their directories; empty when there is no readable workspace manifest.
pub fn workspace_packages(root: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(root.join("Cargo.toml"))
        .map(|manifest| member_packages(root, &manifest))
        .unwrap_or_default()
}

/// The package names of the workspace's members (with `-` read as `_`, as cargo's crate
/// names do), with their directories.
fn member_packages(root: &Path, manifest: &str) -> Vec<(String, String)> {
    let Ok(doc) = manifest.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    let Some(members) = doc
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
    else {
        return Vec::new();
    };
    members
        .iter()
        .filter_map(|m| m.as_str())
        .filter(|m| !m.contains('*'))
        .filter_map(|m| {
            let text = std::fs::read_to_string(root.join(m).join("Cargo.toml")).ok()?;
            let pkg = text.parse::<toml_edit::DocumentMut>().ok()?;
            let name = pkg.get("package")?.get("name")?.as_str()?.replace('-', "_");
            Some((name, m.to_string()))
        })
        .collect()
}

/// What [`create`] made.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub member_added: bool,
    /// Workspace dependencies the template needs that the root manifest lacks.
    pub missing_workspace_deps: Vec<&'static str>,
    pub lang: Lang,
}

/// Writes `plugins/NAME/` under `root` and, for Rust, adds it to the workspace; on any
/// failure nothing is left behind.
pub fn create(root: &Path, name: &str, lang: Lang) -> Result<Created> {
    validate_name(name)?;
    if lang == Lang::Python {
        validate_python_name(name)?;
    }
    let manifest_path = root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "cannot read {} (run this in the Kirana repository)",
            manifest_path.display()
        )
    })?;
    let member = format!("plugins/{name}");
    let dir = root.join(&member);
    if dir.exists() {
        bail!(
            "{} already exists: pick another name, or remove that directory first",
            dir.display()
        );
    }
    if let Some((_, at)) = member_packages(root, &manifest)
        .into_iter()
        .find(|(pkg, _)| pkg == name)
    {
        bail!("the workspace already has a package named {name} (in {at}): pick another name");
    }
    let (new_manifest, missing_workspace_deps, template) = match lang {
        Lang::Rust => (
            add_member(&manifest, &member)?,
            missing_deps(&manifest),
            TEMPLATE,
        ),
        Lang::Python => (None, Vec::new(), PYTHON_TEMPLATE),
    };

    std::fs::create_dir_all(root.join("plugins"))
        .with_context(|| format!("creating {}", root.join("plugins").display()))?;
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = write_files(&dir, name, template).and_then(|files| {
        if let Some(text) = &new_manifest {
            write_atomically(&manifest_path, text)?;
        }
        Ok(files)
    });
    match written {
        Ok(files) => Ok(Created {
            dir,
            files,
            member_added: new_manifest.is_some(),
            missing_workspace_deps,
            lang,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

fn write_files(dir: &Path, name: &str, template: &[(&str, &str)]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (rel, template) in template {
        let path = dir.join(render(rel, name));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, render(template, name))
            .with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

/// Replaces `path` through a temporary file in the same directory, so a crash never
/// leaves a half-written workspace manifest.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("toml.kirana-new");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("replacing {}", path.display())
    })
}

fn missing_deps(manifest: &str) -> Vec<&'static str> {
    let doc = manifest.parse::<toml_edit::DocumentMut>().ok();
    let deps = doc
        .as_ref()
        .and_then(|d| d.get("workspace"))
        .and_then(|w| w.get("dependencies"));
    ["kirana-sdk", "serde"]
        .into_iter()
        .filter(|d| deps.and_then(|t| t.get(d)).is_none())
        .collect()
}

/// What to do after `kirana new plugin NAME`.
pub fn next_steps(name: &str, created: &Created, root: &Path) -> String {
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let files: Vec<String> = created.files.iter().map(|f| rel(f)).collect();
    let mut out = format!("created {} ({})\n", rel(&created.dir), files.join(", "));
    let (build, code) = match created.lang {
        Lang::Rust => {
            if created.member_added {
                out.push_str(&format!(
                    "added \"plugins/{name}\" to the workspace members in Cargo.toml\n"
                ));
            } else {
                out.push_str("the workspace members already include it\n");
            }
            if !created.missing_workspace_deps.is_empty() {
                out.push_str(&format!(
                    "warning: Cargo.toml's [workspace.dependencies] lacks {}; the crate needs them to build\n",
                    created.missing_workspace_deps.join(" and ")
                ));
            }
            (
                format!(
                    "cargo build --release --target wasm32-wasip2 -p {name}\n       cargo test -p {name}"
                ),
                format!("plugins/{name}/src/lib.rs"),
            )
        }
        Lang::Python => (
            format!(
                "scripts/build-python {name}      (componentize-py from PyPI: pip install componentize-py=={})\n       scripts/build-python --test",
                super::python::COMPONENTIZE_PY
            ),
            format!("plugins/{name}/{name}/plugin.py"),
        ),
    };
    out.push_str(&format!(
        "
next steps:
  1. build it (and run its unit test):
       {build}
  2. load it, either at start, with these lines in your kirana.toml
     (then `kirana serve --config kirana.toml`; `kirana up` also builds it):
       [plugins.{name}]
       file = \"{name}.wasm\"
       instances = \"reuse\"
     or into a running host, without a restart (the operator token in KIRANA_TOKEN):
       kirana plugins install target/wasm32-wasip2/release/{name}.wasm
       kirana plugins enable {name}
     (once it asks for capabilities, e.g. sql, the operator approves them:
      [plugins.{name}] grants = [\"sql\"] in its kirana.toml, or
      kirana plugins enable {name} --grant sql)
  3. call it:
       curl http://127.0.0.1:8080/api/v1/{name}/hello
  The code is in {code}; docs/plugin-authoring.md explains the rest.
"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "shelf", "gift_cards", "x9", &"a".repeat(32), "plugin"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Shelf", "9a", "_a", "a-b", "a b", "é", &"a".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        for reserved in ["fn", "match", "std", "test", "serde", "kirana_sdk"] {
            let e = validate_name(reserved).unwrap_err().to_string();
            assert!(e.contains("cannot be a plugin name"), "{e}");
        }
        let e = validate_name("Gift-Cards").unwrap_err().to_string();
        assert!(e.ends_with("did you mean gift_cards?"), "{e}");
        let e = validate_name("9").unwrap_err().to_string();
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn camel() {
        assert_eq!(camel_case("gift_cards"), "GiftCards");
        assert_eq!(camel_case("a1_b__c_"), "A1BC");
        assert_eq!(camel_case("x"), "X");
    }

    #[test]
    fn renders_the_template() {
        let lib = render(TEMPLATE[1].1, "gift_cards");
        assert!(lib.contains("pub struct GiftCardsPlugin;"));
        assert!(lib.contains("\"/api/v1/gift_cards/hello\""));
        assert!(lib.contains("const NAME: &'static str = \"gift_cards\";"));
        assert!(!lib.contains("{{"), "{lib}");
        let cargo = render(TEMPLATE[0].1, "gift_cards");
        assert!(cargo.contains("name = \"gift_cards\""));
        assert!(cargo.contains("crate-type = [\"cdylib\", \"rlib\"]"));
    }

    #[test]
    fn adds_members_in_the_files_own_style() {
        let inline = "[workspace]\nresolver = \"2\"\nmembers = [\"host\", \"plugins/auth\", \"plugins/cart\", \"examples/hello\"] # keep\n\n[workspace.dependencies]\nserde = \"1\"\n";
        assert_eq!(
            add_member(inline, "plugins/shelf").unwrap().unwrap(),
            "[workspace]\nresolver = \"2\"\nmembers = [\"host\", \"plugins/auth\", \"plugins/cart\", \"plugins/shelf\", \"examples/hello\"] # keep\n\n[workspace.dependencies]\nserde = \"1\"\n"
        );
        let multiline = "[workspace]\nmembers = [\n    \"host\",\n    # the plugins\n    \"plugins/auth\",\n]\n";
        assert_eq!(
            add_member(multiline, "plugins/shelf").unwrap().unwrap(),
            "[workspace]\nmembers = [\n    \"host\",\n    # the plugins\n    \"plugins/auth\",\n    \"plugins/shelf\",\n]\n"
        );
        assert_eq!(
            add_member("[workspace]\nmembers = [\"host\"]\n", "plugins/shelf")
                .unwrap()
                .unwrap(),
            "[workspace]\nmembers = [\"host\", \"plugins/shelf\"]\n"
        );
        assert_eq!(
            add_member("[workspace]\nmembers = []\n", "plugins/shelf")
                .unwrap()
                .unwrap(),
            "[workspace]\nmembers = [\"plugins/shelf\"]\n"
        );
        assert!(
            add_member("[workspace]\nmembers = [\"plugins/*\"]\n", "plugins/shelf")
                .unwrap()
                .is_none()
        );
        assert!(add_member(
            "[workspace]\nmembers = [\"plugins/shelf\"]\n",
            "plugins/shelf"
        )
        .unwrap()
        .is_none());
        assert!(add_member("[package]\nname = \"x\"\n", "plugins/shelf").is_err());
        assert!(add_member("members = [", "plugins/shelf").is_err());
    }

    #[test]
    fn the_real_workspace_manifest_takes_a_member() {
        let real = include_str!("../../../Cargo.toml");
        let out = add_member(real, "plugins/zz_probe").unwrap().unwrap();
        assert!(out.contains("\"plugins/zz_probe\""));
        assert_eq!(out.lines().count(), real.lines().count());
        assert!(missing_deps(real).is_empty());
    }
}
