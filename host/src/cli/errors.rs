//! What the CLI tells an operator when the host does not answer as hoped: the API
//! error's code, message and details, and the fix for the usual causes.

use serde_json::Value;

/// The fix for a missing or refused token.
pub const TOKEN_HINT: &str = "set KIRANA_TOKEN to the operator token (config [admin] operator_token, \
                              KIRANA_ADMIN_OPERATOR_TOKEN; `kirana up` keeps one in data/operator-token), or pass --token";

/// The fix for a component over the host's upload limit.
const UPLOAD_HINT: &str =
    "\nthe host takes uploads up to [admin] max_upload_mb (64 MiB by default); raise it in its config";

/// When nothing answers at `url`.
pub fn unreachable_message(url: &str, cause: &str) -> String {
    format!(
        "cannot reach kirana at {url} ({cause})\n\
         is kirana running at {url}? start it with `kirana serve` or pass --url (or set KIRANA_URL)"
    )
}

/// Explains a non-2xx answer: the API error's code, message and details, plus the fix
/// for authentication problems.
pub fn error_message(status: u16, body: &str, url: &str, token_given: bool) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let err = parsed
        .as_ref()
        .map(|v| &v["error"])
        .filter(|e| e["code"].is_string());
    let Some(err) = err else {
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let snippet: String = body.trim().chars().take(300).collect();
        let mut msg = format!("kirana at {url} answered {status} {reason}")
            .trim_end()
            .to_string();
        if !snippet.is_empty() {
            msg.push_str(&format!(": {snippet}"));
        }
        match status {
            401 => {
                msg.push('\n');
                msg.push_str(TOKEN_HINT);
            }
            413 => msg.push_str(UPLOAD_HINT),
            _ => {}
        }
        return msg;
    };
    let code = err["code"].as_str().unwrap_or("error");
    let message = err["message"].as_str().unwrap_or("");
    let mut lines = Vec::new();
    if status == 401 && !token_given {
        lines.push(format!(
            "no token given: kirana at {url} answered 401 {code}: {message}"
        ));
    } else {
        lines.push(format!("{code} ({status}): {message}"));
    }
    lines.extend(details_lines(&err["details"]));
    match status {
        401 => lines.push(TOKEN_HINT.to_string()),
        413 => lines.push(UPLOAD_HINT.trim_start().to_string()),
        403 => lines.push(
            "the token is a shop account's, not the operator's: plugins are changed only with the \
             operator token (config [admin] operator_token, KIRANA_ADMIN_OPERATOR_TOKEN)"
                .into(),
        ),
        _ => {}
    }
    if let Some(id) = parsed
        .as_ref()
        .and_then(|v| v["request_id"].as_str())
        .filter(|_| status >= 500)
    {
        lines.push(format!(
            "request id {id} (quote it when reporting the problem)"
        ));
    }
    lines.join("\n")
}

/// `details` as lines: `fields` as `- field: message`, other keys as `key: value`.
fn details_lines(details: &Value) -> Vec<String> {
    let Some(map) = details.as_object() else {
        return match detail_text(details) {
            t if t.is_empty() => Vec::new(),
            t => vec![t],
        };
    };
    let mut lines = Vec::new();
    for (k, v) in map {
        if k == "fields" {
            if let Some(fields) = v.as_array() {
                for f in fields {
                    lines.push(format!(
                        "- {}: {}",
                        f["field"].as_str().unwrap_or("?"),
                        f["message"].as_str().unwrap_or("invalid")
                    ));
                }
                continue;
            }
        }
        lines.push(format!("{k}: {}", detail_text(v)));
    }
    lines
}

/// A free-form `detail`: strings as they are, anything else as compact JSON.
pub fn detail_text(detail: &Value) -> String {
    match detail {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_explain_the_fix() {
        let body = |code: &str, msg: &str, details: Value| {
            json!({"error": {"code": code, "message": msg, "details": details}, "request_id": "r1"})
                .to_string()
        };
        let m = error_message(
            401,
            &body("unauthorized", "missing token", json!({})),
            "http://h",
            false,
        );
        assert_eq!(
            m,
            format!("no token given: kirana at http://h answered 401 unauthorized: missing token\n{TOKEN_HINT}")
        );
        let m = error_message(
            401,
            &body("unauthorized", "expired", json!({})),
            "http://h",
            true,
        );
        assert!(m.starts_with("unauthorized (401): expired\n"), "{m}");
        assert!(m.contains("KIRANA_TOKEN"), "{m}");
        let m = error_message(
            403,
            &body("forbidden", "admins only", json!({})),
            "http://h",
            true,
        );
        assert!(m.contains("not the operator's"), "{m}");
        let m = error_message(
            400,
            &body(
                "validation_failed",
                "the component is invalid",
                json!({"fields": [{"field": "component", "message": "no describe export"}]}),
            ),
            "http://h",
            true,
        );
        assert_eq!(
            m,
            "validation_failed (400): the component is invalid\n- component: no describe export"
        );
        let m = error_message(
            409,
            &body(
                "conflict",
                "1.4.0 is live",
                json!({"live_version": "1.4.0", "n": 2}),
            ),
            "http://h",
            true,
        );
        assert_eq!(
            m,
            "conflict (409): 1.4.0 is live\nlive_version: 1.4.0\nn: 2"
        );
        let m = error_message(500, &body("internal", "boom", json!({})), "http://h", true);
        assert!(
            m.ends_with("request id r1 (quote it when reporting the problem)"),
            "{m}"
        );
        let m = error_message(502, "<html>bad gateway</html>", "http://h", true);
        assert_eq!(
            m,
            "kirana at http://h answered 502 Bad Gateway: <html>bad gateway</html>"
        );
        let m = error_message(413, "length limit exceeded", "http://h", true);
        assert_eq!(
            m,
            format!("kirana at http://h answered 413 Payload Too Large: length limit exceeded{UPLOAD_HINT}")
        );
        let m = error_message(401, "", "http://h", false);
        assert!(m.contains("KIRANA_TOKEN"), "{m}");
        let m = unreachable_message("http://h", "Connection refused");
        assert!(
            m.contains("is kirana running at http://h? start it with `kirana serve` or pass --url")
        );
    }
}
