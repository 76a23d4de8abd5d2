//! Topics have owners. A topic belongs to the one enabled plugin whose manifest declares
//! it in `capabilities.publish`; only that plugin may publish or schedule it (the
//! events capability checks a version's own list). So a subscriber can trust where an
//! event comes from: nobody else can forge a `user.created` or an
//! `orders.payment_timeout`. A plugin's own next version (a swap, a canary) keeps its
//! topics; a disabled plugin owns nothing until it is enabled again.

use std::sync::Arc;

use super::{RegistryError, Snapshot};
use crate::runtime::LoadedPlugin;

/// The first topic `name` declares that another plugin of `owners` already declares:
/// `(topic, owner)`. Entries named `name` are the plugin's own versions and own nothing
/// against it.
fn taken<'a>(
    name: &str,
    declares: &'a [String],
    owners: impl IntoIterator<Item = (&'a str, &'a [String])> + Clone,
) -> Option<(&'a str, &'a str)> {
    declares.iter().find_map(|topic| {
        owners
            .clone()
            .into_iter()
            .find(|(owner, topics)| *owner != name && topics.contains(topic))
            .map(|(owner, _)| (topic.as_str(), owner))
    })
}

/// Refuses (409) a version of a plugin that declares a topic another enabled plugin,
/// or another plugin's running canary, owns.
pub fn check(snap: &Snapshot, plugin: &LoadedPlugin) -> Result<(), RegistryError> {
    let owners = snap
        .plugins
        .values()
        .chain(snap.canaries.values().map(|c| &c.plugin))
        .map(|p| (p.name(), p.manifest.capabilities.publish.as_slice()));
    match taken(plugin.name(), &plugin.manifest.capabilities.publish, owners) {
        None => Ok(()),
        Some((topic, owner)) => Err(RegistryError::Conflict(refusal(
            plugin.name(),
            plugin.version(),
            topic,
            owner,
        ))),
    }
}

fn refusal(name: &str, version: &str, topic: &str, owner: &str) -> String {
    format!(
        "{name} {version} declares topic {topic:?}, which {owner} owns: a topic has one owner, the enabled plugin whose manifest declares it; publish a topic of {name}'s own, or disable {owner} first"
    )
}

/// A plugin left out at start, and why.
pub type Refused = (Arc<LoadedPlugin>, String);

/// At start: splits the plugins about to go live into those kept and those left out
/// (with why) because an earlier one owns a topic they declare. Plugins already live
/// with this same version (`incumbent`) come first, then by name, so a topic stays
/// with the plugin that had it.
pub fn settle(
    plugins: Vec<Arc<LoadedPlugin>>,
    incumbent: impl Fn(&LoadedPlugin) -> bool,
) -> (Vec<Arc<LoadedPlugin>>, Vec<Refused>) {
    let claims: Vec<(&str, &[String], bool)> = plugins
        .iter()
        .map(|p| {
            (
                p.name(),
                p.manifest.capabilities.publish.as_slice(),
                incumbent(p),
            )
        })
        .collect();
    let refused = settle_claims(&claims);
    let mut kept = Vec::new();
    let mut out = Vec::new();
    for (i, p) in plugins.into_iter().enumerate() {
        match refused.iter().find(|(j, _, _)| *j == i) {
            Some((_, topic, owner)) => {
                let why = refusal(p.name(), p.version(), topic, owner);
                out.push((p, why));
            }
            None => kept.push(p),
        }
    }
    (kept, out)
}

/// [`settle`] on `(name, topics, incumbent)`: the indices left out, each with the
/// topic and its owner.
fn settle_claims(claims: &[(&str, &[String], bool)]) -> Vec<(usize, String, String)> {
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by_key(|&i| (!claims[i].2, claims[i].0));
    let mut kept: Vec<(&str, &[String])> = Vec::new();
    let mut refused = Vec::new();
    for i in order {
        let (name, topics, _) = claims[i];
        match taken(name, topics, kept.iter().copied()) {
            Some((topic, owner)) => refused.push((i, topic.to_string(), owner.to_string())),
            None => kept.push((name, topics)),
        }
    }
    refused.sort();
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_topic_has_one_owner() {
        let auth = topics(&["user.created"]);
        let orders = topics(&["order.created", "orders.payment_timeout"]);
        let owners = [("auth", auth.as_slice()), ("orders", orders.as_slice())];
        let forger = topics(&["swap.noted", "orders.payment_timeout"]);
        assert_eq!(
            taken("swap", &forger, owners),
            Some(("orders.payment_timeout", "orders"))
        );
        assert_eq!(taken("swap", &topics(&["swap.noted"]), owners), None);
        // Its own next version keeps its topics.
        assert_eq!(taken("orders", &orders, owners), None);
        let msg = refusal("swap", "9.9.8", "user.created", "auth");
        assert!(
            msg.contains("\"user.created\"") && msg.contains("auth owns"),
            "{msg}"
        );
    }

    #[test]
    fn at_start_the_incumbent_keeps_its_topics() {
        let orders = topics(&["order.created"]);
        let loyalty = topics(&["order.created", "loyalty.earned"]);
        let hello = topics(&[]);
        // loyalty sorts first by name, but orders was live with this version.
        let claims = [
            ("hello", hello.as_slice(), false),
            ("loyalty", loyalty.as_slice(), false),
            ("orders", orders.as_slice(), true),
        ];
        assert_eq!(
            settle_claims(&claims),
            vec![(1, "order.created".to_string(), "orders".to_string())]
        );
        // With neither live before, names decide.
        let claims = [
            ("orders", orders.as_slice(), false),
            ("loyalty", loyalty.as_slice(), false),
        ];
        assert_eq!(
            settle_claims(&claims),
            vec![(0, "order.created".to_string(), "loyalty".to_string())]
        );
        // No shared topic, nobody left out.
        let claims = [
            ("orders", orders.as_slice(), true),
            ("hello", hello.as_slice(), false),
        ];
        assert!(settle_claims(&claims).is_empty());
    }
}
