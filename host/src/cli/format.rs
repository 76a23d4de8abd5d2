//! What the CLI prints: tables, one-line outcomes and error messages. Pure functions of
//! the host's answers, so they are tested without a host.

use std::cmp::Ordering;

use serde_json::Value;

use super::api::{Canary, Entry, HistoryItem, Installed, VersionInfo};
use super::table::Table;

/// `1234567` → `1.2 MB` (decimal units, like download tools).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        // 999.95 would print as "1000.0"; move up a unit instead.
        if value < 999.95 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// A latency in milliseconds with sensible precision; `-` when unknown.
pub fn millis(ms: Option<f64>) -> String {
    match ms {
        Some(v) if v.is_finite() && v >= 0.0 => {
            if v < 10.0 {
                format!("{v:.2} ms")
            } else if v < 100.0 {
                format!("{v:.1} ms")
            } else {
                format!("{v:.0} ms")
            }
        }
        _ => "-".into(),
    }
}

/// `errors` as a share of `requests`, like `0.4%`; `-` when there were no requests.
pub fn error_rate(errors: u64, requests: u64) -> String {
    if requests == 0 {
        return "-".into();
    }
    let pct = errors as f64 * 100.0 / requests as f64;
    if pct > 0.0 && pct < 0.1 {
        "<0.1%".into()
    } else {
        format!("{pct:.1}%")
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` in UTC; anything else unchanged.
pub fn short_time(at: Option<&str>) -> String {
    use time::format_description::well_known::Rfc3339;
    let Some(at) = at else {
        return "-".into();
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::parse(at, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| at.to_string())
}

/// A route's role as the host reported it.
pub fn role_text(role: &Value) -> String {
    match role {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(role_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn or_dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".into(),
    }
}

/// Newest first by semantic version; what does not parse sorts after, by text.
fn newest_first(a: &str, b: &str) -> Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(x), Ok(y)) => y.cmp(&x),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => b.cmp(a),
    }
}

fn sorted_versions(e: &Entry) -> Vec<&VersionInfo> {
    let mut v: Vec<&VersionInfo> = e.versions.iter().collect();
    v.sort_by(|a, b| newest_first(&a.version, &b.version));
    v
}

/// The installed versions for a table cell: the three newest, then how many more.
pub fn versions_cell(e: &Entry) -> String {
    let versions = sorted_versions(e);
    if versions.is_empty() {
        return "-".into();
    }
    let shown: Vec<&str> = versions
        .iter()
        .take(3)
        .map(|v| v.version.as_str())
        .collect();
    let mut cell = shown.join(", ");
    if versions.len() > 3 {
        cell.push_str(&format!(" (+{})", versions.len() - 3));
    }
    cell
}

fn canary_cell(c: Option<&Canary>) -> String {
    match c {
        Some(c) => format!("{} at {}%", c.version, c.percent),
        None => "-".into(),
    }
}

fn is_disabled(e: &Entry) -> bool {
    e.state == "disabled"
}

/// `kirana plugins list`.
pub fn list_table(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "no plugins installed\n".into();
    }
    let mut t = Table::new(&[
        "NAME", "STATE", "LIVE", "VERSIONS", "REQUESTS", "ERRORS", "P50", "P99", "CANARY",
    ])
    .right(&[4, 5, 6, 7]);
    for e in entries {
        let idle = e.stats.requests == 0;
        t.row(vec![
            e.name.clone(),
            or_dash(Some(&e.state)),
            or_dash(e.live_version.as_deref()),
            versions_cell(e),
            e.stats.requests.to_string(),
            e.stats.errors.to_string(),
            millis(if idle { None } else { e.stats.p50_ms }),
            millis(if idle { None } else { e.stats.p99_ms }),
            canary_cell(e.canary.as_ref()),
        ]);
    }
    t.render()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// `kirana plugins inspect NAME`: a key/value block, then versions, routes, history.
pub fn inspect(e: &Entry) -> String {
    let mut kv: Vec<(&str, String)> = vec![
        ("name", e.name.clone()),
        ("state", or_dash(Some(&e.state))),
        ("live version", or_dash(e.live_version.as_deref())),
    ];
    if let Some(c) = &e.canary {
        kv.push((
            "canary",
            format!(
                "{} at {}% since {}",
                c.version,
                c.percent,
                short_time(c.started_at.as_deref())
            ),
        ));
        kv.push((
            "canary traffic",
            format!(
                "{} requests, {} errors ({})",
                c.requests,
                c.errors,
                error_rate(c.errors, c.requests)
            ),
        ));
        kv.push((
            "stable traffic",
            format!(
                "{} requests, {} errors ({})",
                c.stable_requests,
                c.stable_errors,
                error_rate(c.stable_errors, c.stable_requests)
            ),
        ));
    }
    let s = &e.stats;
    if s.requests == 0 {
        kv.push(("requests", "0".into()));
    } else {
        kv.push((
            "requests",
            format!(
                "{}, {} errors ({})",
                s.requests,
                s.errors,
                error_rate(s.errors, s.requests)
            ),
        ));
        kv.push((
            "latency",
            format!("p50 {}, p99 {}", millis(s.p50_ms), millis(s.p99_ms)),
        ));
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    kv.push(("subscriptions", list(&e.subscriptions)));
    kv.push(("grants", list(&e.grants)));
    let key_width = kv.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &kv {
        out.push_str(&format!("{k:<key_width$}  {v}\n"));
    }

    out.push_str(&format!("\nversions ({})\n", e.versions.len()));
    if e.versions.is_empty() {
        out.push_str("  none installed\n");
    } else {
        let mut t = Table::new(&[
            "VERSION",
            "STATUS",
            "SIZE",
            "SHA256",
            "INSTALLED (UTC)",
            "BY",
        ])
        .right(&[2]);
        for v in sorted_versions(e) {
            let status = if e.canary.as_ref().is_some_and(|c| c.version == v.version) {
                "canary"
            } else if e.live_version.as_deref() == Some(v.version.as_str()) {
                if is_disabled(e) {
                    "disabled"
                } else {
                    "live"
                }
            } else {
                ""
            };
            t.row(vec![
                v.version.clone(),
                status.into(),
                human_bytes(v.size),
                v.sha256.chars().take(12).collect(),
                short_time(v.installed_at.as_deref()),
                or_dash(v.installed_by.as_deref()),
            ]);
        }
        out.push_str(&indent(&t.render()));
    }

    out.push_str(&format!("\nroutes ({})\n", e.routes.len()));
    if e.routes.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut t = Table::new(&["METHOD", "PATH", "ROLE"]);
        for r in &e.routes {
            t.row(vec![r.method.clone(), r.path.clone(), role_text(&r.role)]);
        }
        out.push_str(&indent(&t.render()));
    }

    if !e.history.is_empty() {
        out.push_str(&format!("\nhistory ({})\n", e.history.len()));
        out.push_str(&indent(&history_table(&e.history)));
    }
    out
}

fn history_table(items: &[HistoryItem]) -> String {
    let mut t = Table::new(&["AT (UTC)", "ACTION", "VERSION", "BY", "DETAIL"]);
    for h in items {
        t.row(vec![
            short_time(h.at.as_deref()),
            h.action.clone(),
            or_dash(h.version.as_deref()),
            or_dash(h.actor.as_deref()),
            super::errors::detail_text(&h.detail),
        ]);
    }
    t.render()
}

/// A mutating command, for [`change_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Enable,
    Promote,
    Disable,
    Rollback,
}

/// What was serving before, as " (was ...)", for a change to `after`; empty when
/// nothing was (a plugin installed but never live).
fn was(before: &Entry, after: &Entry) -> String {
    let text = match (&before.live_version, &before.canary) {
        (Some(v), _) if is_disabled(before) && after.live_version.as_ref() == Some(v) => {
            "was disabled".to_string()
        }
        (Some(v), _) if is_disabled(before) => format!("was {v}, disabled"),
        (None, _) if is_disabled(before) => "was disabled".into(),
        (Some(v), Some(c)) => format!("was {v}, canary {} at {}%", c.version, c.percent),
        (Some(v), None) => format!("was {v}"),
        (None, _) => return String::new(),
    };
    format!(" ({text})")
}

/// The one line a mutating command prints, from the entry before (when it could be
/// read) and the entry the host answered with.
pub fn change_line(action: Action, before: Option<&Entry>, after: &Entry) -> String {
    let name = &after.name;
    let live = or_dash(after.live_version.as_deref());
    let unchanged = before.is_some_and(|b| {
        b.state == after.state
            && b.live_version == after.live_version
            && b.canary.as_ref().map(|c| (&c.version, c.percent))
                == after.canary.as_ref().map(|c| (&c.version, c.percent))
    });
    if is_disabled(after) {
        return if unchanged {
            format!("{name} was already disabled")
        } else {
            let prev = before.map(|b| was(b, after)).unwrap_or_default();
            format!(
                "{name} is disabled{prev}; its routes answer 503 until `kirana plugins enable {name}`"
            )
        };
    }
    if let Some(c) = &after.canary {
        let stable = match &after.live_version {
            Some(v) => format!("stable {v}"),
            None => "no stable version".into(),
        };
        let prefix = if unchanged { "still " } else { "" };
        return format!(
            "{name}: {prefix}canary {} at {}% ({stable}); `kirana plugins promote {name}` makes it live, `kirana plugins rollback {name}` stops it",
            c.version, c.percent
        );
    }
    if unchanged {
        return format!("{name} {live} was already live");
    }
    match (action, before) {
        (Action::Rollback, Some(b))
            if b.canary.is_some() && b.live_version == after.live_version =>
        {
            let c = b.canary.as_ref().map(|c| c.version.as_str()).unwrap_or("-");
            format!("{name}: canary {c} stopped; {live} stays live")
        }
        (Action::Rollback, Some(b)) => format!("{name} rolled back to {live}{}", was(b, after)),
        (_, Some(b)) => format!("{name} {live} is live{}", was(b, after)),
        (_, None) => format!("{name} {live} is live"),
    }
}

/// The line `kirana plugins install` prints: 201 new, 200 already there.
pub fn installed_line(status: u16, i: &Installed) -> String {
    let sha: String = i.sha256.chars().take(12).collect();
    let mut out = if status == 201 {
        format!("installed {} {} (sha256 {sha})", i.name, i.version)
    } else {
        format!(
            "{} {} was already installed with these bytes (sha256 {sha}); nothing changed",
            i.name, i.version
        )
    };
    let asks = if i.requested_grants.is_empty() {
        "nothing".to_string()
    } else {
        i.requested_grants.join(", ")
    };
    out.push_str(&format!("\nit asks for: {asks}"));
    if i.unapproved_grants.is_empty() {
        out.push_str(&format!(
            "\nmake it live with `kirana plugins enable {}@{}`",
            i.name, i.version
        ));
    } else {
        out.push_str(&format!(
            "\nnot approved yet: {}\nreview them, then approve and make it live with `kirana plugins enable {}@{} --grant {}`",
            i.unapproved_grants.join(", "),
            i.name,
            i.version,
            i.unapproved_grants.join(",")
        ));
    }
    out
}

/// Re-indents JSON text two spaces per level, keeping the host's key order (serde_json's
/// `preserve_order`: a parsed object keeps its keys as they came). Numbers are written
/// as serde_json writes them, which is how the host wrote them. `None` when `raw` is
/// not JSON.
pub fn pretty_json(raw: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::api::{RouteInfo, Stats};
    use serde_json::json;

    fn entry(name: &str, state: &str, live: Option<&str>, versions: &[&str]) -> Entry {
        Entry {
            name: name.into(),
            state: state.into(),
            live_version: live.map(str::to_string),
            versions: versions
                .iter()
                .map(|v| VersionInfo {
                    version: v.to_string(),
                    sha256: "0123456789abcdef0123".into(),
                    size: 1_234_567,
                    installed_at: Some("2025-03-01T10:20:30.123456Z".into()),
                    installed_by: Some("admin@kirana.local".into()),
                })
                .collect(),
            ..Entry::default()
        }
    }

    fn canary(version: &str, percent: u32) -> Option<Canary> {
        Some(Canary {
            version: version.into(),
            percent,
            started_at: Some("2025-03-01T11:00:00+05:30".into()),
            requests: 40,
            errors: 2,
            stable_requests: 360,
            stable_errors: 0,
        })
    }

    #[test]
    fn units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(999_960), "1.0 MB");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(human_bytes(45_000), "45.0 kB");
        assert_eq!(human_bytes(3_000_000_000), "3.0 GB");
        assert_eq!(millis(None), "-");
        assert_eq!(millis(Some(0.4213)), "0.42 ms");
        assert_eq!(millis(Some(12.34)), "12.3 ms");
        assert_eq!(millis(Some(1234.5)), "1234 ms");
        assert_eq!(millis(Some(f64::NAN)), "-");
        assert_eq!(error_rate(0, 0), "-");
        assert_eq!(error_rate(1, 200), "0.5%");
        assert_eq!(error_rate(1, 100_000), "<0.1%");
        assert_eq!(
            short_time(Some("2025-03-01T11:00:00+05:30")),
            "2025-03-01 05:30:00"
        );
        assert_eq!(short_time(Some("yesterday")), "yesterday");
        assert_eq!(short_time(None), "-");
        assert_eq!(role_text(&json!(["admin", "customer"])), "admin,customer");
        assert_eq!(role_text(&json!("public")), "public");
    }

    #[test]
    fn list_is_a_table() {
        let mut cart = entry(
            "cart",
            "live",
            Some("1.3.0"),
            &["1.2.0", "1.10.0", "1.3.0", "0.9.0"],
        );
        cart.stats = Stats {
            requests: 1200,
            errors: 3,
            p50_ms: Some(1.5),
            p99_ms: Some(22.0),
        };
        cart.canary = canary("1.10.0", 10);
        let hello = entry("hello", "disabled", None, &[]);
        assert_eq!(
            list_table(&[cart, hello]),
            "NAME   STATE     LIVE   VERSIONS                   REQUESTS  ERRORS      P50      P99  CANARY\n\
             cart   live      1.3.0  1.10.0, 1.3.0, 1.2.0 (+1)      1200       3  1.50 ms  22.0 ms  1.10.0 at 10%\n\
             hello  disabled  -      -                                 0       0        -        -  -\n"
        );
        assert_eq!(list_table(&[]), "no plugins installed\n");
    }

    #[test]
    fn inspect_shows_everything() {
        let mut e = entry("cart", "live", Some("1.3.0"), &["1.3.0", "1.4.0"]);
        e.canary = canary("1.4.0", 10);
        e.subscriptions = vec!["order.created".into()];
        e.routes = vec![RouteInfo {
            method: "GET".into(),
            path: "/api/v1/cart".into(),
            role: json!("customer"),
        }];
        e.history = vec![HistoryItem {
            action: "enable".into(),
            version: Some("1.4.0".into()),
            actor: Some("admin@kirana.local".into()),
            at: Some("2025-03-01T05:30:00Z".into()),
            detail: json!({"canary_percent": 10}),
        }];
        let text = inspect(&e);
        assert_eq!(
            text,
            "name            cart\n\
             state           live\n\
             live version    1.3.0\n\
             canary          1.4.0 at 10% since 2025-03-01 05:30:00\n\
             canary traffic  40 requests, 2 errors (5.0%)\n\
             stable traffic  360 requests, 0 errors (0.0%)\n\
             requests        0\n\
             subscriptions   order.created\n\
             grants          -\n\
             \n\
             versions (2)\n  \
               VERSION  STATUS    SIZE  SHA256        INSTALLED (UTC)      BY\n  \
               1.4.0    canary  1.2 MB  0123456789ab  2025-03-01 10:20:30  admin@kirana.local\n  \
               1.3.0    live    1.2 MB  0123456789ab  2025-03-01 10:20:30  admin@kirana.local\n\
             \n\
             routes (1)\n  \
               METHOD  PATH          ROLE\n  \
               GET     /api/v1/cart  customer\n\
             \n\
             history (1)\n  \
               AT (UTC)             ACTION  VERSION  BY                  DETAIL\n  \
               2025-03-01 05:30:00  enable  1.4.0    admin@kirana.local  {\"canary_percent\":10}\n"
        );
        let bare = inspect(&entry("x", "disabled", None, &[]));
        assert!(bare.contains("versions (0)\n  none installed\n"), "{bare}");
        assert!(bare.contains("routes (0)\n  none\n"), "{bare}");
        assert!(!bare.contains("history"), "{bare}");
    }

    #[test]
    fn change_lines() {
        let v13 = entry("cart", "live", Some("1.3.0"), &["1.3.0", "1.4.0"]);
        let v14 = entry("cart", "live", Some("1.4.0"), &["1.3.0", "1.4.0"]);
        let mut canary14 = v13.clone();
        canary14.canary = canary("1.4.0", 10);
        let disabled = entry("cart", "disabled", Some("1.3.0"), &["1.3.0"]);
        let fresh = entry("cart", "disabled", None, &["1.3.0"]);

        assert_eq!(
            change_line(Action::Enable, Some(&v13), &v14),
            "cart 1.4.0 is live (was 1.3.0)"
        );
        assert_eq!(
            change_line(Action::Enable, Some(&v13), &canary14),
            "cart: canary 1.4.0 at 10% (stable 1.3.0); `kirana plugins promote cart` makes it live, `kirana plugins rollback cart` stops it"
        );
        assert_eq!(
            change_line(Action::Promote, Some(&canary14), &v14),
            "cart 1.4.0 is live (was 1.3.0, canary 1.4.0 at 10%)"
        );
        assert_eq!(
            change_line(Action::Rollback, Some(&canary14), &v13),
            "cart: canary 1.4.0 stopped; 1.3.0 stays live"
        );
        assert_eq!(
            change_line(Action::Rollback, Some(&v14), &v13),
            "cart rolled back to 1.3.0 (was 1.4.0)"
        );
        assert_eq!(
            change_line(Action::Disable, Some(&v13), &disabled),
            "cart is disabled (was 1.3.0); its routes answer 503 until `kirana plugins enable cart`"
        );
        assert_eq!(
            change_line(Action::Disable, Some(&disabled), &disabled),
            "cart was already disabled"
        );
        assert_eq!(
            change_line(Action::Enable, Some(&disabled), &v13),
            "cart 1.3.0 is live (was disabled)"
        );
        assert_eq!(
            change_line(Action::Enable, Some(&fresh), &v13),
            "cart 1.3.0 is live (was disabled)"
        );
        assert_eq!(
            change_line(Action::Enable, Some(&disabled), &v14),
            "cart 1.4.0 is live (was 1.3.0, disabled)"
        );
        let installed = entry("cart", "installed", None, &["1.3.0"]);
        assert_eq!(
            change_line(Action::Enable, Some(&installed), &v13),
            "cart 1.3.0 is live"
        );
        assert_eq!(
            change_line(Action::Enable, Some(&v13), &v13),
            "cart 1.3.0 was already live"
        );
        assert_eq!(
            change_line(Action::Enable, None, &v13),
            "cart 1.3.0 is live"
        );
    }

    #[test]
    fn install_lines() {
        let mut i = Installed {
            name: "cart".into(),
            version: "1.4.0".into(),
            sha256: "ab".repeat(32),
            requested_grants: vec!["sql".into(), "call:catalog".into()],
            unapproved_grants: Vec::new(),
        };
        assert_eq!(
            installed_line(201, &i),
            "installed cart 1.4.0 (sha256 abababababab)\nit asks for: sql, call:catalog\nmake it live with `kirana plugins enable cart@1.4.0`"
        );
        assert!(installed_line(200, &i).contains("already installed"));
        i.unapproved_grants = vec!["call:catalog".into()];
        assert!(
            installed_line(201, &i).ends_with(
                "not approved yet: call:catalog\nreview them, then approve and make it live with `kirana plugins enable cart@1.4.0 --grant call:catalog`"
            ),
            "{}",
            installed_line(201, &i)
        );
    }

    #[test]
    fn json_is_reindented_in_order() {
        let raw = r#"{"z":1,"a":[],"m":{"k":"a,b:{c}\"[","n":[1.5,{},-3,18446744073709551615]},"e":null}"#;
        assert_eq!(
            pretty_json(raw).unwrap(),
            "{\n  \"z\": 1,\n  \"a\": [],\n  \"m\": {\n    \"k\": \"a,b:{c}\\\"[\",\n    \"n\": [\n      1.5,\n      {},\n      -3,\n      18446744073709551615\n    ]\n  },\n  \"e\": null\n}"
        );
        assert_eq!(pretty_json(" [ ] ").unwrap(), "[]");
        assert!(pretty_json("{nope").is_none());
    }
}
