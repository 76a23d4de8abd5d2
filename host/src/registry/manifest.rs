//! Checks that what `describe` returned is something the host can route and trust.

use anyhow::{bail, Result};

use crate::bindings::wit;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Refuses a manifest with a wrong name, a version that is not semver, or routes the
/// gateway could not serve, saying exactly what is wrong.
pub fn validate_manifest(expected_name: &str, m: &wit::Manifest) -> Result<()> {
    if m.name != expected_name {
        bail!(
            "the component describes itself as {:?} but is configured as {expected_name:?}",
            m.name
        );
    }
    if semver::Version::parse(&m.version).is_err() {
        bail!(
            "version {:?} is not a semantic version (like 1.2.3)",
            m.version
        );
    }
    let mut seen = std::collections::HashSet::new();
    for r in &m.routes {
        if !METHODS.contains(&r.method.as_str()) {
            bail!(
                "route {} {}: method must be one of {}",
                r.method,
                r.path,
                METHODS.join(", ")
            );
        }
        if !r.path.starts_with('/') || r.path.contains("//") || r.path.contains('?') {
            bail!(
                "route {} {}: paths start with / and hold no query",
                r.method,
                r.path
            );
        }
        if let wit::Access::Roles(roles) = &r.access {
            if roles.is_empty() || roles.iter().any(|x| x.is_empty()) {
                bail!(
                    "route {} {}: a roles list needs at least one role",
                    r.method,
                    r.path
                );
            }
        }
        for schema in [&r.request_schema, &r.response_schema]
            .into_iter()
            .flatten()
        {
            if serde_json::from_str::<serde_json::Value>(schema).is_err() {
                bail!("route {} {}: a schema is not valid JSON", r.method, r.path);
            }
        }
        if !seen.insert((r.method.clone(), r.path.clone())) {
            bail!("route {} {} is declared twice", r.method, r.path);
        }
    }
    for topic in &m.subscriptions {
        if topic.is_empty() {
            bail!("an empty subscription topic");
        }
    }
    // Topics have owners: a manifest names each topic it publishes, and each named one
    // becomes its own (the registry refuses a second owner at enable).
    for topic in &m.capabilities.publish {
        if topic.contains(['*', '?', '>', '#']) {
            bail!(
                "capabilities.publish lists {topic:?}: a plugin publishes only the topics it owns, so no wildcards; list each topic it publishes or schedules by name (like \"order.created\")"
            );
        }
        if !crate::core::grants::is_name(topic) {
            bail!(
                "capabilities.publish lists {topic:?}, which is not a topic name: 1 to 128 of letters, digits, '.', '_' and '-'"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(routes: Vec<wit::Route>) -> wit::Manifest {
        wit::Manifest {
            name: "cart".into(),
            version: "1.0.0".into(),
            routes,
            subscriptions: vec![],
            capabilities: wit::Capabilities {
                sql: false,
                kv: false,
                publish: vec![],
                call: vec![],
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

    fn route(method: &str, path: &str) -> wit::Route {
        wit::Route {
            method: method.into(),
            path: path.into(),
            access: wit::Access::Public,
            summary: None,
            request_schema: None,
            response_schema: None,
        }
    }

    #[test]
    fn accepts_a_good_manifest() {
        validate_manifest("cart", &manifest(vec![route("GET", "/api/v1/cart")])).unwrap();
    }

    #[test]
    fn refuses_bad_ones_with_reasons() {
        let e = validate_manifest("orders", &manifest(vec![])).unwrap_err();
        assert!(e.to_string().contains("configured as"));
        let e = validate_manifest("cart", &manifest(vec![route("FETCH", "/x")])).unwrap_err();
        assert!(e.to_string().contains("method"));
        let e = validate_manifest(
            "cart",
            &manifest(vec![route("GET", "/x"), route("GET", "/x")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("twice"));
        let mut m = manifest(vec![]);
        m.version = "one".into();
        assert!(validate_manifest("cart", &m).is_err());
    }

    #[test]
    fn published_topics_are_named_not_wildcards() {
        let mut m = manifest(vec![]);
        m.capabilities.publish = vec!["cart.checked_out".into()];
        validate_manifest("cart", &m).unwrap();
        for wild in ["*", "cart.*", "user.>", "#"] {
            m.capabilities.publish = vec!["cart.checked_out".into(), wild.into()];
            let e = validate_manifest("cart", &m).unwrap_err().to_string();
            assert!(e.contains("list each topic"), "{wild}: {e}");
        }
        for bad in ["", "a b", &"t".repeat(129)] {
            m.capabilities.publish = vec![bad.into()];
            let e = validate_manifest("cart", &m).unwrap_err().to_string();
            assert!(e.contains("not a topic name"), "{bad}: {e}");
        }
    }
}
