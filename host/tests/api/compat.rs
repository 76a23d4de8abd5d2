//! The WIT changes compatibly: a component built against `kirana:platform@0.1.0` keeps
//! loading and working when the host's WIT grows. The committed build of the `hello`
//! example (tests/fixtures/hello-wit-0.1.0.wasm, see the README beside it) is installed
//! through the operator API, enabled and called, with the capabilities it uses.

use crate::helpers::*;

/// The test host does not load hello from its file, so the committed build is the only
/// hello there is; the section keeps the grants hello asks for.
const CONFIG: &str = "[plugins.hello]\nfile = \"\"\ngrants = [\"kv\", \"realtime\", \"mail\"]";

fn fixture() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hello-wit-0.1.0.wasm"
    );
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

backend_test!(
    a_component_built_against_wit_0_1_0_keeps_working,
    CONFIG,
    |app| {
        // Nothing answers for hello before the old build is installed.
        app.get("/api/v1/hello/ping", None)
            .await
            .assert_error(404, "not_found");
        let r = app.upload_component(Some(OPERATOR_TOKEN), fixture()).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["name"], "hello", "{}", r.text);
        assert_eq!(r.body["version"], "0.1.0", "{}", r.text);
        let sha256 = r.body["sha256"].as_str().expect("sha256").to_string();
        let r = app
            .post(
                "/admin/plugins/hello/enable",
                Some(OPERATOR_TOKEN),
                json!({"version": "0.1.0"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["live_version"], "0.1.0", "{}", r.text);
        let live = r.body["versions"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["version"] == "0.1.0"))
            .unwrap_or_else(|| panic!("no 0.1.0 in {}", r.text));
        assert_eq!(live["sha256"], sha256.as_str(), "{}", r.text);

        // A route with no capability, then one counting in kv.
        let r = app.get("/api/v1/hello/ping", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!({"status": "ok"}));
        for n in 1..=2 {
            let r = app.get("/api/v1/hello?name=Asha", None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["message"], "Namaste, Asha!", "{}", r.text);
            assert_eq!(r.body["count"], n, "{}", r.text);
        }
        // Mail: a postcard goes into the host's outbox and is listed back.
        let admin = app.admin_token().await;
        let to = format!("{}@example.in", app.unique("pc"));
        let r = app
            .post(
                "/api/v1/hello/postcards",
                Some(&admin),
                json!({"to": to, "message": "Built against 0.1.0"}),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
        let r = app
            .get(&format!("/api/v1/hello/postcards?to={to}"), Some(&admin))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["items"][0]["to"], to.as_str(), "{}", r.text);
        assert_eq!(
            r.body["items"][0]["body"], "Built against 0.1.0",
            "{}",
            r.text
        );
    }
);
