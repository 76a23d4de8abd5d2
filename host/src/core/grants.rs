//! What a plugin may use: the capabilities its manifest asks for, each of which the
//! operator must have approved (`[plugins.NAME] grants`, or `--grant` at enable).
//! Nothing is assumed: a plugin with no approvals gets nothing, and a version asking
//! for more than was approved does not go live.
//!
//! Topics have owners: a plugin publishes (and schedules) only the topics its manifest
//! declares, each by name, and the registry lets one enabled plugin declare a topic
//! (`registry::topics`). So there is no grant for "any topic": a subscriber can trust
//! that a `user.created` comes from the plugin that owns it.

use anyhow::{bail, Result};

use crate::bindings::wit;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub sql: bool,
    pub kv: bool,
    pub identity: bool,
    pub realtime: bool,
    pub mail: bool,
    /// The topics this version owns and may publish or schedule, each by name.
    pub publish: Vec<String>,
    pub call: Vec<String>,
    /// The `files:MiB` grant: the plugin's files quota. A manifest cannot ask for it
    /// (its record would change shape for older plugins), so it is the operator's alone.
    pub files_mb: Option<u64>,
    /// The `pages` grant: the plugin serves web pages on the shop's origin and its own
    /// `Content-Security-Policy` and `Referrer-Policy` reach the browser. Without it
    /// the host's forbid-everything policy replaces them, so a plugin cannot run script
    /// next to the shoppers' tokens. The operator's alone, like `files:MiB`.
    pub pages: bool,
}

/// The simple capabilities, as the configuration spells them.
const FLAGS: &[&str] = &["sql", "kv", "identity", "realtime", "mail"];

impl Grants {
    /// As the configuration spells them: `sql`, `kv`, `identity`, `realtime`, `mail`,
    /// `publish:TOPIC`, `call:PLUGIN`.
    pub fn as_list(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.sql, "sql"),
            (self.kv, "kv"),
            (self.identity, "identity"),
            (self.realtime, "realtime"),
            (self.mail, "mail"),
        ] {
            if on {
                out.push(name.to_string());
            }
        }
        out.extend(self.publish.iter().map(|t| format!("publish:{t}")));
        out.extend(self.call.iter().map(|p| format!("call:{p}")));
        out
    }

    /// Nothing at all (while `describe` runs).
    pub fn none() -> Self {
        Self::default()
    }

    /// What a manifest asks for, as given.
    pub fn asked(asked: &wit::Capabilities) -> Self {
        Self {
            sql: asked.sql,
            kv: asked.kv,
            identity: asked.identity,
            realtime: asked.realtime,
            mail: asked.mail,
            publish: asked.publish.clone(),
            call: asked.call.clone(),
            files_mb: None,
            pages: false,
        }
    }

    /// The largest `files:MiB` among `approved`.
    fn files_quota(approved: &[String]) -> Option<u64> {
        approved
            .iter()
            .filter_map(|a| a.strip_prefix("files:")?.parse::<u64>().ok())
            .max()
    }

    /// The grants a version needs, as the configuration spells them: its capabilities,
    /// `subscribe:TOPIC` for each topic it subscribes to (events carry other plugins'
    /// data: who signed up, what they ordered), and `memory:MiB` when its manifest asks
    /// for more memory than `memory_limit_mb`.
    pub fn requested(
        manifest: &wit::Manifest,
        memory_ask_mb: Option<u32>,
        memory_limit_mb: u32,
    ) -> Vec<String> {
        let mut out = Self::asked(&manifest.capabilities).as_list();
        out.extend(
            manifest
                .subscriptions
                .iter()
                .map(|t| format!("subscribe:{t}")),
        );
        if let Some(mb) = memory_ask_mb.filter(|mb| *mb > memory_limit_mb) {
            out.push(format!("memory:{mb}"));
        }
        out
    }

    /// Of `requested`, what `approved` does not cover (`subscribe:*` covers every
    /// topic; `memory:N` covers any ask up to N MiB). Publishing is approved topic by
    /// topic.
    pub fn missing(requested: &[String], approved: &[String]) -> Vec<String> {
        let covered = |want: &str| {
            approved.iter().any(|a| a == want)
                || (want.starts_with("subscribe:") && approved.iter().any(|a| a == "subscribe:*"))
                || want.strip_prefix("memory:").is_some_and(|mb| {
                    let mb: u64 = mb.parse().unwrap_or(u64::MAX);
                    approved.iter().any(|a| {
                        a.strip_prefix("memory:")
                            .and_then(|n| n.parse::<u64>().ok())
                            .is_some_and(|n| n >= mb)
                    })
                })
        };
        requested.iter().filter(|w| !covered(w)).cloned().collect()
    }

    /// Checks one grant as an operator spells it; the error says what is allowed.
    pub fn check_spelling(grant: &str) -> Result<()> {
        if grant == "publish:*" {
            bail!(
                "\"publish:*\" is not a grant: a plugin publishes only the topics its manifest declares as its own; approve each as publish:TOPIC"
            );
        }
        let ok = FLAGS.contains(&grant)
            || grant == "pages"
            || grant.strip_prefix("publish:").is_some_and(is_name)
            || grant
                .strip_prefix("subscribe:")
                .is_some_and(|t| t == "*" || is_name(t))
            || grant.strip_prefix("call:").is_some_and(is_name)
            || grant
                .strip_prefix("memory:")
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
            || grant
                .strip_prefix("files:")
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0));
        if !ok {
            bail!(
                "{grant:?} is not a grant: use sql, kv, identity, realtime, mail, publish:TOPIC, subscribe:TOPIC, subscribe:*, call:PLUGIN, memory:MiB, files:MiB or pages"
            );
        }
        Ok(())
    }

    /// The manifest's request, if `approved` covers all of it; otherwise an error naming
    /// what is missing and how to approve it.
    pub fn resolve(
        plugin: &str,
        manifest: &wit::Manifest,
        memory_ask_mb: Option<u32>,
        memory_limit_mb: u32,
        approved: &[String],
    ) -> Result<Self> {
        let version = &manifest.version;
        let requested = Self::requested(manifest, memory_ask_mb, memory_limit_mb);
        let missing = Self::missing(&requested, approved);
        if !missing.is_empty() {
            bail!(
                "{plugin} {version} asks for grants the operator has not approved: {}; approve them with `kirana plugins enable {plugin}@{version} --grant {}` (or list them in [plugins.{plugin}] grants)",
                missing.join(", "),
                missing.join(",")
            );
        }
        Ok(Self {
            files_mb: Self::files_quota(approved),
            pages: approved.iter().any(|a| a == "pages"),
            ..Self::asked(&manifest.capabilities)
        })
    }

    /// Whether `topic` is one of this version's own topics (publish and schedule alike).
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|t| t == topic)
    }

    pub fn may_call(&self, plugin: &str) -> bool {
        self.call.iter().any(|p| p == plugin)
    }
}

/// A topic or plugin name in a grant or manifest: 1 to 128 of letters, digits, `.`,
/// `_`, `-` (so no wildcard).
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> wit::Manifest {
        wit::Manifest {
            name: "orders".into(),
            version: "1.0.0".into(),
            routes: Vec::new(),
            subscriptions: vec!["payment.captured".into()],
            capabilities: wit::Capabilities {
                sql: true,
                kv: false,
                publish: vec!["order.created".into()],
                call: vec!["catalog".into()],
                identity: false,
                realtime: false,
                mail: false,
            },
            limits: wit::Limits {
                memory_mb: None,
                timeout_ms: None,
            },
        }
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nothing_is_granted_without_approval() {
        let err = Grants::resolve("orders", &caps(), None, 64, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sql")
                && err.contains("publish:order.created")
                && err.contains("call:catalog"),
            "{err}"
        );
        assert!(
            err.contains(
                "--grant sql,publish:order.created,call:catalog,subscribe:payment.captured"
            ),
            "{err}"
        );
    }

    #[test]
    fn approvals_must_cover_the_request() {
        let ok = list(&[
            "sql",
            "publish:order.created",
            "call:catalog",
            "subscribe:*",
        ]);
        let g = Grants::resolve("orders", &caps(), None, 64, &ok).unwrap();
        assert!(g.sql && !g.kv);
        assert!(g.may_publish("order.created") && !g.may_publish("user.created"));
        assert!(g.may_call("catalog") && !g.may_call("auth"));
        let short = list(&["sql"]);
        let err = Grants::resolve("orders", &caps(), None, 64, &short)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("publish:order.created") && err.contains("call:catalog"),
            "{err}"
        );
    }

    #[test]
    fn more_memory_than_the_limit_needs_a_memory_grant() {
        let approved = list(&[
            "sql",
            "publish:order.created",
            "call:catalog",
            "subscribe:payment.captured",
        ]);
        assert!(Grants::resolve("orders", &caps(), Some(64), 64, &approved).is_ok());
        let err = Grants::resolve("orders", &caps(), Some(200), 64, &approved)
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory:200"), "{err}");
        let mut more = approved.clone();
        more.push("memory:256".into());
        assert!(Grants::resolve("orders", &caps(), Some(200), 64, &more).is_ok());
        more.pop();
        more.push("memory:128".into());
        assert!(Grants::resolve("orders", &caps(), Some(200), 64, &more).is_err());
    }

    #[test]
    fn the_files_grant_is_the_quota_and_the_largest_one_counts() {
        let base = list(&[
            "sql",
            "publish:order.created",
            "call:catalog",
            "subscribe:*",
        ]);
        let g = Grants::resolve("orders", &caps(), None, 64, &base).unwrap();
        assert_eq!(g.files_mb, None);
        let mut more = base.clone();
        more.extend(list(&["files:2", "files:64"]));
        let g = Grants::resolve("orders", &caps(), None, 64, &more).unwrap();
        assert_eq!(g.files_mb, Some(64));
        assert!(!g.pages);
        more.push("pages".into());
        assert!(
            Grants::resolve("orders", &caps(), None, 64, &more)
                .unwrap()
                .pages
        );
    }

    #[test]
    fn grant_spelling_is_checked() {
        for good in [
            "sql",
            "kv",
            "publish:order.created",
            "subscribe:user.created",
            "subscribe:*",
            "call:cart",
            "memory:128",
            "files:64",
            "pages",
        ] {
            assert!(Grants::check_spelling(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "SQL",
            "publish:",
            "publish:*",
            "publish:orders.*",
            "call:*",
            "memory:lots",
            "memory:0",
            "files:0",
            "files",
            "net",
            "call:a b",
        ] {
            assert!(Grants::check_spelling(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_grant_covers_every_topic() {
        let err = Grants::check_spelling("publish:*").unwrap_err().to_string();
        assert!(
            err.contains("publish:TOPIC") && err.contains("own"),
            "{err}"
        );
        // An approval stored before `publish:*` was refused covers nothing.
        let requested = list(&["publish:order.created"]);
        assert_eq!(
            Grants::missing(&requested, &list(&["publish:*"])),
            requested
        );
        // Nor does a `*` in the list of topics, were one to get there.
        let g = Grants {
            publish: list(&["*"]),
            ..Grants::none()
        };
        assert!(!g.may_publish("user.created") && !g.may_publish("*x"));
        let g = Grants {
            publish: list(&["order.created"]),
            ..Grants::none()
        };
        assert!(g.may_publish("order.created") && !g.may_publish("order.cancelled"));
    }
}
