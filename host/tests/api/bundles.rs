//! Plugin bundles: a version's component and read-only assets uploaded, checked,
//! served, swapped and rolled back as one (the `swap` test plugin serves its assets at
//! `GET /api/v1/swap/asset?path=`).

use std::collections::BTreeMap;

use kirana::registry::bundle;

use crate::helpers::*;

const CONFIG: &str = "[plugins.swap]\ngrants = [\"sql\", \"subscribe:faulty.flaky\"]";

fn component(name: &str) -> Vec<u8> {
    std::fs::read(plugin_dir().join(format!("{name}.wasm")))
        .unwrap_or_else(|e| panic!("{name}.wasm: {e} (./scripts/test builds it)"))
}

fn bundle_of(name: &str, assets: &[(&str, &str)]) -> Vec<u8> {
    let assets: BTreeMap<String, Vec<u8>> = assets
        .iter()
        .map(|(p, d)| (p.to_string(), d.as_bytes().to_vec()))
        .collect();
    bundle::pack(&component(name), &assets).expect("pack")
}

async fn upload_bundle(app: &TestApp, bytes: Vec<u8>) -> Resp {
    app.raw(
        "POST",
        "/admin/plugins",
        Some(OPERATOR_TOKEN),
        Some("application/x-tar"),
        bytes,
    )
    .await
}

async fn admin(app: &TestApp, what: &str, body: serde_json::Value) -> Resp {
    let r = app
        .post(
            &format!("/admin/plugins/swap/{what}"),
            Some(OPERATOR_TOKEN),
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{what}: {}", r.text);
    r
}

async fn asset(app: &TestApp, path: &str) -> Resp {
    app.get(&format!("/api/v1/swap/asset?path={path}"), None)
        .await
}

backend_test!(
    a_bundles_assets_are_served_swapped_and_rolled_back_with_its_version,
    CONFIG,
    |app| {
        let v1 = bundle_of(
            "swap_v1",
            &[("page.html", "<p>one</p>"), ("css/site.css", "p{}")],
        );
        let r = upload_bundle(app, v1.clone()).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["version"], "1.0.0");
        admin(app, "enable", json!({"version": "1.0.0"})).await;
        let page = asset(app, "page.html").await;
        assert_eq!((page.status, page.text.as_str()), (200, "<p>one</p>"));
        let etag = page.header("etag").expect("etag").to_string();
        assert_eq!(asset(app, "css/site.css").await.text, "p{}");
        asset(app, "nope.html").await.assert_error(404, "not_found");
        let escape = asset(app, "../../kirana.toml").await;
        escape.assert_error(400, "validation_failed");

        // The same version with other assets is other bytes: refused.
        let other = bundle_of("swap_v1", &[("page.html", "<p>changed</p>")]);
        upload_bundle(app, other)
            .await
            .assert_error(409, "conflict");
        // The same bundle again is a no-op.
        assert_eq!(upload_bundle(app, v1).await.status, 200);

        // Version 2 ships a new page and no stylesheet; enabling swaps both.
        let v2 = bundle_of("swap_v2", &[("page.html", "<p>two</p>")]);
        assert_eq!(upload_bundle(app, v2).await.status, 201);
        admin(app, "enable", json!({"version": "2.0.0"})).await;
        let page = asset(app, "page.html").await;
        assert_eq!(page.text, "<p>two</p>");
        assert_ne!(page.header("etag"), Some(etag.as_str()));
        asset(app, "css/site.css")
            .await
            .assert_error(404, "not_found");

        // Rollback brings version 1's assets back with its code.
        admin(app, "rollback", json!({})).await;
        let page = asset(app, "page.html").await;
        assert_eq!(
            (page.text.as_str(), page.header("etag")),
            ("<p>one</p>", Some(etag.as_str()))
        );
        assert_eq!(asset(app, "css/site.css").await.text, "p{}");

        // A bare component has no assets.
        let r = app
            .upload_component(Some(OPERATOR_TOKEN), component("swap_flaky"))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
);

backend_test!(
    a_hostile_or_broken_bundle_is_refused_and_nothing_is_installed,
    CONFIG,
    |app| {
        // Every asset path goes through the files rules when packing too, so forge the
        // archive: a good bundle whose asset entry is renamed to climb out.
        let good = bundle_of("swap_v1", &[("aaaaaaaaaa.txt", "hi")]);
        let needle = b"assets/aaaaaaaaaa.txt";
        let at = good
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("entry name");
        let mut climbing = good.clone();
        climbing[at..at + needle.len()].copy_from_slice(b"assets/../../etc/pwd1");
        // Fix the tar header checksum so only the path is wrong.
        let header = at - at % 512;
        climbing[header + 148..header + 156].copy_from_slice(b"        ");
        let sum: u32 = climbing[header..header + 512]
            .iter()
            .map(|&b| u32::from(b))
            .sum();
        climbing[header + 148..header + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());

        let mut truncated = good.clone();
        truncated.truncate(good.len() / 2);
        let mut tampered = good.clone();
        let data = at - at % 512 + 512;
        tampered[data] = b'H';

        for (what, bytes, needle) in [
            ("climbing", climbing, "asset"),
            ("truncated", truncated, "bundle"),
            ("tampered", tampered, "SHA-256"),
        ] {
            let r = upload_bundle(app, bytes).await;
            r.assert_error(400, "validation_failed");
            assert!(r.text.contains(needle), "{what}: {}", r.text);
        }
        let listed = app.get("/admin/plugins", Some(OPERATOR_TOKEN)).await;
        assert!(
            !listed.text.contains("\"swap\""),
            "nothing installed: {}",
            listed.text
        );
        // The wrong media type says which ones work.
        let r = app
            .raw(
                "POST",
                "/admin/plugins",
                Some(OPERATOR_TOKEN),
                Some("application/zip"),
                good,
            )
            .await;
        r.assert_error(415, "unsupported_media_type");
        assert!(r.text.contains("application/x-tar"), "{}", r.text);
        assert_eq!(app.get("/health", None).await.status, 200);
    }
);
