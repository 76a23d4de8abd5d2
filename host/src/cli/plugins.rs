//! `kirana plugins ...`: one request (two for mutations, to say what changed) to the
//! host's `/admin/plugins` API, printed as text or as the host's JSON.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};

use super::api::{Body, Client, Entry, EntryList, HttpFailure, Installed, Reply};
use super::format::{self, Action};
use super::{Connection, PluginsCmd};

pub(super) fn run(cmd: PluginsCmd, conn: &Connection) -> Result<()> {
    let url = match conn.url.trim() {
        "" => super::DEFAULT_URL,
        url => url,
    };
    let token = conn.token.clone().or_else(development_token);
    let client = Client::new(url, token, conn.timeout)?;
    let json = conn.json;
    match cmd {
        PluginsCmd::List => {
            let reply = client
                .call(Method::GET, &["admin", "plugins"], Body::Empty)
                .map_err(|e| {
                    if e
                        .downcast_ref::<HttpFailure>()
                        .is_some_and(|f| f.status == 404)
                    {
                        anyhow!(
                            "{e}\n{} has no operator API at /admin/plugins: is it a kirana host of this version?",
                            client.shown_url()
                        )
                    } else {
                        e
                    }
                })?;
            if json {
                print_json(&reply);
            } else {
                let list: EntryList = reply.parse("GET /admin/plugins")?;
                print!("{}", format::list_table(&list.items));
            }
        }
        PluginsCmd::Inspect { name } => {
            let reply = client.call(Method::GET, &["admin", "plugins", &name], Body::Empty)?;
            if json {
                print_json(&reply);
            } else {
                let entry: Entry = reply.parse("GET /admin/plugins/{name}")?;
                print!("{}", format::inspect(&entry));
            }
        }
        PluginsCmd::Install { file, assets } => install(&client, &file, assets.as_deref(), json)?,
        PluginsCmd::Enable {
            spec,
            canary,
            grant,
        } => {
            let (name, version) = split_spec(&spec)?;
            let mut body = json!({});
            if let Some(v) = version {
                body["version"] = Value::from(v);
            }
            if let Some(p) = canary {
                body["canary_percent"] = Value::from(p);
            }
            let grant: Vec<&str> = grant
                .iter()
                .map(|g| g.trim())
                .filter(|g| !g.is_empty())
                .collect();
            if !grant.is_empty() {
                body["grants"] = json!(grant);
            }
            mutate(&client, name, "enable", body, Action::Enable, json)?;
        }
        PluginsCmd::Promote { name } => {
            mutate(&client, &name, "promote", json!({}), Action::Promote, json)?
        }
        PluginsCmd::Disable { name } => {
            mutate(&client, &name, "disable", json!({}), Action::Disable, json)?
        }
        PluginsCmd::Rollback { name } => mutate(
            &client,
            &name,
            "rollback",
            json!({}),
            Action::Rollback,
            json,
        )?,
        PluginsCmd::Delete { spec } => {
            let (name, version) = split_spec(&spec)?;
            let Some(version) = version else {
                bail!("delete takes NAME@VERSION, like {name}@1.2.0 (`kirana plugins inspect {name}` lists the versions)");
            };
            let reply = client.call(
                Method::DELETE,
                &["admin", "plugins", name, "versions", version],
                Body::Empty,
            )?;
            if json {
                print_json(&reply);
            } else {
                println!("deleted {name} {version}");
            }
        }
    }
    Ok(())
}

/// `NAME` or `NAME@VERSION`.
fn split_spec(spec: &str) -> Result<(&str, Option<&str>)> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    if name.is_empty() {
        bail!("missing plugin name in {spec:?}; write NAME or NAME@VERSION, like cart@1.4.0");
    }
    if version.is_some_and(|v| v.is_empty() || v.contains('@')) {
        bail!("bad version in {spec:?}; write NAME@VERSION, like cart@1.4.0");
    }
    Ok((name, version))
}

/// The host's JSON, indented, keys in the host's order; a body-less answer prints nothing.
fn print_json(reply: &Reply) {
    if reply.body.trim().is_empty() {
        return;
    }
    match format::pretty_json(&reply.body) {
        Some(text) => println!("{text}"),
        None => println!("{}", reply.body),
    }
}

fn mutate(
    client: &Client,
    name: &str,
    verb: &str,
    body: Value,
    action: Action,
    json: bool,
) -> Result<()> {
    // The entry before the change only serves the "(was ...)" of the text output.
    let before = if json {
        None
    } else {
        let reply = client.call(Method::GET, &["admin", "plugins", name], Body::Empty)?;
        reply.parse::<Entry>("GET /admin/plugins/{name}").ok()
    };
    let reply = client.call(
        Method::POST,
        &["admin", "plugins", name, verb],
        Body::Json(body),
    )?;
    if json {
        print_json(&reply);
    } else {
        let after: Entry = reply.parse(&format!("POST /admin/plugins/{{name}}/{verb}"))?;
        println!("{}", format::change_line(action, before.as_ref(), &after));
    }
    Ok(())
}

fn install(client: &Client, file: &Path, assets: Option<&Path>, json: bool) -> Result<()> {
    let shown = file.display();
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "NAME".into());
            bail!(
                "{shown} does not exist; build the plugin first: cargo build --release --target wasm32-wasip2 -p {stem}"
            );
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {shown}")),
    };
    let is_bundle = kirana::registry::bundle::is_bundle(&bytes);
    if !bytes.starts_with(b"\0asm") && !is_bundle {
        bail!(
            "{shown} is neither a WebAssembly file nor a plugin bundle; install the component cargo builds, like target/wasm32-wasip2/release/NAME.wasm"
        );
    }
    let (bytes, what) = match assets {
        None if is_bundle => (bytes, "bundle"),
        None => (bytes, "component"),
        Some(_) if is_bundle => bail!("{shown} is a bundle already; --assets goes with a .wasm"),
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--assets {}: not a directory", dir.display());
            }
            (
                kirana::registry::bundle::pack_dir(&bytes, dir)?,
                "component and assets",
            )
        }
    };
    eprintln!(
        "uploading {shown} ({what}, {}) to {}; the host validates and compiles it…",
        format::human_bytes(bytes.len() as u64),
        client.shown_url()
    );
    let body = if what == "component" {
        Body::Wasm(bytes)
    } else {
        Body::Bundle(bytes)
    };
    let reply = client.call(Method::POST, &["admin", "plugins"], body)?;
    if json {
        print_json(&reply);
    } else {
        let installed: Installed = reply.parse("POST /admin/plugins")?;
        println!("{}", format::installed_line(reply.status, &installed));
    }
    Ok(())
}

/// The operator token `kirana up` keeps for this checkout (`./data/operator-token`),
/// when no token was given.
fn development_token() -> Option<String> {
    std::fs::read_to_string(Path::new("data").join(kirana::config::OPERATOR_TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(split_spec("cart").unwrap(), ("cart", None));
        assert_eq!(split_spec("cart@1.4.0").unwrap(), ("cart", Some("1.4.0")));
        assert!(split_spec("@1.0.0").is_err());
        assert!(split_spec("cart@").is_err());
        assert!(split_spec("cart@1@2").is_err());
    }
}
