//! What a plugin may use: the capabilities its manifest asks for, narrowed by the
//! operator's `grants` list when one is configured.

use anyhow::{bail, Result};

use crate::runtime::bindings::wit;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub sql: bool,
    pub kv: bool,
    pub identity: bool,
    pub realtime: bool,
    pub mail: bool,
    /// Topics, or `*` for any.
    pub publish: Vec<String>,
    pub call: Vec<String>,
}

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

    /// The manifest's request, checked against the operator's list. Asking for
    /// something the operator did not grant refuses the plugin, with the reason.
    pub fn resolve(
        plugin: &str,
        asked: &wit::Capabilities,
        operator: Option<&[String]>,
    ) -> Result<Self> {
        let wanted = Self {
            sql: asked.sql,
            kv: asked.kv,
            identity: asked.identity,
            realtime: asked.realtime,
            mail: asked.mail,
            publish: asked.publish.clone(),
            call: asked.call.clone(),
        };
        let Some(list) = operator else {
            return Ok(wanted);
        };
        let has = |g: &str| list.iter().any(|x| x == g);
        let mut missing = Vec::new();
        for (asked, name) in [
            (wanted.sql, "sql"),
            (wanted.kv, "kv"),
            (wanted.identity, "identity"),
            (wanted.realtime, "realtime"),
            (wanted.mail, "mail"),
        ] {
            if asked && !has(name) {
                missing.push(name.to_string());
            }
        }
        for t in &wanted.publish {
            if !has("publish:*") && !has(&format!("publish:{t}")) {
                missing.push(format!("publish:{t}"));
            }
        }
        for p in &wanted.call {
            if !has(&format!("call:{p}")) {
                missing.push(format!("call:{p}"));
            }
        }
        if !missing.is_empty() {
            bail!(
                "plugin {plugin} asks for capabilities the operator has not granted: {} (add them to plugins.{plugin}.grants)",
                missing.join(", ")
            );
        }
        Ok(wanted)
    }

    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|t| t == "*" || t == topic)
    }

    pub fn may_call(&self, plugin: &str) -> bool {
        self.call.iter().any(|p| p == plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> wit::Capabilities {
        wit::Capabilities {
            sql: true,
            kv: false,
            publish: vec!["order.created".into()],
            call: vec!["catalog".into()],
            identity: false,
            realtime: false,
            mail: false,
        }
    }

    #[test]
    fn manifest_is_granted_without_operator_list() {
        let g = Grants::resolve("orders", &caps(), None).unwrap();
        assert!(g.sql && !g.kv);
        assert!(g.may_publish("order.created") && !g.may_publish("user.created"));
        assert!(g.may_call("catalog") && !g.may_call("auth"));
    }

    #[test]
    fn operator_list_must_cover_the_request() {
        let ok = vec!["sql".to_string(), "publish:*".into(), "call:catalog".into()];
        assert!(Grants::resolve("orders", &caps(), Some(&ok)).is_ok());
        let short = vec!["sql".to_string()];
        let err = Grants::resolve("orders", &caps(), Some(&short))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("publish:order.created") && err.contains("call:catalog"),
            "{err}"
        );
    }
}
