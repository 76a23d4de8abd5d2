//! Product images over HTTP: uploads sniffed, decoded and re-encoded inside the catalog
//! plugin, served with caching headers, deleted with their files; bad, oversized and
//! bomb images refused with clear errors while the host stays up; every product without
//! an upload shows a generated illustration.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use crate::helpers::*;
use crate::shop::new_product;

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    out
}

/// A 1200×900 photo-like gradient.
fn photo() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(1200, 900, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    }))
}

async fn upload(
    app: &TestApp,
    token: Option<&str>,
    product: &str,
    bytes: Vec<u8>,
    ct: &str,
) -> Resp {
    app.raw(
        "POST",
        &format!("/api/v1/products/{product}/images"),
        token,
        Some(ct),
        bytes,
    )
    .await
}

async fn fetch(app: &TestApp, url: &str, etag: Option<&str>) -> reqwest::Response {
    let mut rb = app.client.get(app.url(url));
    if let Some(tag) = etag {
        rb = rb.header("if-none-match", tag);
    }
    rb.send().await.expect("get")
}

backend_test!(
    an_uploaded_photo_is_resized_served_cached_and_deleted_with_its_files,
    |app| {
        let admin = app.admin_token().await;
        let product = new_product(app, &admin, 5000, 10).await;
        let r = upload(
            app,
            Some(&admin),
            &product,
            encode(photo(), ImageFormat::Jpeg),
            "image/jpeg",
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let images = r.body["images"].as_array().expect("images").clone();
        assert_eq!(images.len(), 1, "{}", r.text);
        let img = &images[0];
        assert_eq!(
            (img["width"].as_u64(), img["height"].as_u64()),
            (Some(800), Some(600))
        );
        assert_eq!(img["generated"], false);
        let url = img["url"].as_str().expect("url").to_string();
        assert_eq!(r.body["image_url"], url.as_str());

        let got = fetch(app, &url, None).await;
        assert_eq!(got.status(), 200);
        assert_eq!(got.headers()["content-type"], "image/jpeg");
        assert!(got.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let etag = got.headers()["etag"].to_str().unwrap().to_string();
        let bytes = got.bytes().await.expect("bytes");
        let decoded = image::load_from_memory(&bytes).expect("a JPEG");
        assert_eq!((decoded.width(), decoded.height()), (800, 600));
        assert_eq!(fetch(app, &url, Some(&etag)).await.status(), 304);
        let thumb = fetch(app, img["thumbnail_url"].as_str().unwrap(), None).await;
        let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).expect("thumb");
        assert_eq!((thumb.width(), thumb.height()), (200, 150));

        // PNG with transparency and WebP are taken too; the declared type is ignored.
        let clear =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(300, 300, Rgba([10, 20, 30, 0])));
        let r = upload(
            app,
            Some(&admin),
            &product,
            encode(clear, ImageFormat::Png),
            "application/octet-stream",
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let webp =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(64, 48, Rgba([200, 10, 10, 255])));
        let r = upload(
            app,
            Some(&admin),
            &product,
            encode(webp, ImageFormat::WebP),
            "image/png",
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["images"].as_array().map(Vec::len), Some(3));
        // Listing and search carry the images too.
        let listed = app.get(&format!("/api/v1/products/{product}"), None).await;
        assert_eq!(listed.body["images"].as_array().map(Vec::len), Some(3));

        // Deleting an image removes it and its files.
        let id = img["id"].as_str().unwrap();
        let del = app
            .delete(
                &format!("/api/v1/products/{product}/images/{id}"),
                Some(&admin),
            )
            .await;
        assert_eq!(del.status, 204, "{}", del.text);
        assert_eq!(fetch(app, &url, None).await.status(), 404);
        app.delete(
            &format!("/api/v1/products/{product}/images/{id}"),
            Some(&admin),
        )
        .await
        .assert_error(404, "not_found");
        // Deleting the product takes the rest.
        let left = app.get(&format!("/api/v1/products/{product}"), None).await;
        let left_url = left.body["images"][0]["url"].as_str().unwrap().to_string();
        assert_eq!(fetch(app, &left_url, None).await.status(), 200);
        let gone = app
            .delete(&format!("/api/v1/products/{product}"), Some(&admin))
            .await;
        assert_eq!(gone.status, 204, "{}", gone.text);
        assert_eq!(fetch(app, &left_url, None).await.status(), 404);
    }
);

backend_test!(
    bad_oversized_and_bomb_images_are_refused_and_the_host_stays_up,
    |app| {
        let admin = app.admin_token().await;
        let customer = app.customer().await;
        let product = new_product(app, &admin, 5000, 10).await;
        let jpeg = encode(photo(), ImageFormat::Jpeg);

        upload(app, None, &product, jpeg.clone(), "image/jpeg")
            .await
            .assert_error(401, "unauthorized");
        upload(
            app,
            Some(&customer.token),
            &product,
            jpeg.clone(),
            "image/jpeg",
        )
        .await
        .assert_error(403, "forbidden");
        upload(app, Some(&admin), "prd_nope", jpeg.clone(), "image/jpeg")
            .await
            .assert_error(404, "not_found");

        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
        upload(app, Some(&admin), &product, gif, "image/gif")
            .await
            .assert_error(415, "unsupported_media_type");
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        upload(app, Some(&admin), &product, svg.to_vec(), "image/svg+xml")
            .await
            .assert_error(415, "unsupported_media_type");
        // JPEG magic, then garbage.
        let mut broken = jpeg[..64].to_vec();
        broken.extend(std::iter::repeat_n(0x42u8, 4096));
        upload(app, Some(&admin), &product, broken, "image/jpeg")
            .await
            .assert_invalid_field("image");
        // A 9000×9000 PNG compresses to almost nothing: refused from its header.
        let bomb = encode(
            DynamicImage::ImageLuma8(image::GrayImage::new(9000, 9000)),
            ImageFormat::Png,
        );
        assert!(bomb.len() < 1_000_000, "{}", bomb.len());
        let r = upload(app, Some(&admin), &product, bomb, "image/png").await;
        r.assert_invalid_field("image");
        assert!(r.text.contains("9000"), "{}", r.text);
        // Over 5 MB: the gateway refuses it before the plugin runs.
        let mut huge = jpeg.clone();
        huge.resize(5 * 1024 * 1024 + 1, 0);
        upload(app, Some(&admin), &product, huge, "image/jpeg")
            .await
            .assert_error(413, "payload_too_large");

        // Nothing was added, and the host serves on.
        let p = app.get(&format!("/api/v1/products/{product}"), None).await;
        assert_eq!(p.body["images"][0]["generated"], true, "{}", p.text);
        assert_eq!(app.get("/health", None).await.status, 200);
        let ok = upload(app, Some(&admin), &product, jpeg, "image/jpeg").await;
        assert_eq!(ok.status, 201, "{}", ok.text);
    }
);

backend_test!(every_seeded_product_has_an_image, |app| {
    let r = app.get("/api/v1/products?page_size=100", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().expect("items");
    assert!(items.len() >= 100);
    for p in items {
        let img = &p["images"][0];
        assert_eq!(img["generated"], true, "{p}");
        assert_eq!(p["image_url"], img["url"], "{p}");
    }
    let first = &items[0];
    let got = fetch(app, first["images"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/svg+xml");
    assert!(got.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let svg = got.text().await.unwrap();
    assert!(svg.starts_with("<svg") && !svg.contains("<script"), "{svg}");
    // No image URL of the catalog points off this site.
    assert!(!r.text.contains("img.kirana.example"));
});

backend_test!(
    images_count_against_the_files_budget_not_the_api_budget,
    "[rate_limit]\nenabled = true\nper_minute = 6\nfiles_per_minute = 30\n",
    |app| {
        // A shopper's page pulls many images: they do not use up the API budget.
        let r = app.get("/api/v1/products?page_size=3", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let url = r.body["items"][0]["images"][0]["url"]
            .as_str()
            .expect("image url")
            .to_string();
        for _ in 0..20 {
            let got = fetch(app, &url, None).await;
            assert_eq!(got.status(), 200);
            assert_eq!(got.headers()["x-ratelimit-limit"], "30");
        }
        for _ in 0..5 {
            assert_eq!(app.get("/api/v1/categories", None).await.status, 200);
        }
        app.get("/api/v1/categories", None)
            .await
            .assert_error(429, "rate_limited");
        // With the API budget spent, images still load, up to their own budget.
        for _ in 0..10 {
            assert_eq!(fetch(app, &url, None).await.status(), 200);
        }
        let over = fetch(app, &url, None).await;
        assert_eq!(over.status(), 429);
        assert!(over.headers().contains_key("retry-after"));

        // The OpenAPI document shows the route's answer as a file.
        let doc = app.get("/openapi.json", None).await;
        let content = &doc.body["paths"]["/api/v1/products/{id}/images/{image_id}/{size}"]["get"]
            ["responses"]["2XX"]["content"];
        assert_eq!(
            content["image/jpeg"]["schema"]["format"], "binary",
            "{content}"
        );
        assert!(content.get("application/json").is_none(), "{content}");
    }
);

backend_test!(concurrent_uploads_to_one_product_all_stay, |app| {
    let admin = app.admin_token().await;
    let product = new_product(app, &admin, 1000, 5).await;
    let jpeg = encode(photo(), ImageFormat::Jpeg);
    let uploads = (0..4).map(|_| upload(app, Some(&admin), &product, jpeg.clone(), "image/jpeg"));
    for r in futures::future::join_all(uploads).await {
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let p = app.get(&format!("/api/v1/products/{product}"), None).await;
    let images = p.body["images"].as_array().expect("images");
    assert_eq!(images.len(), 4, "every upload is kept: {}", p.text);
    for img in images {
        let url = img["url"].as_str().expect("url");
        assert_eq!(fetch(app, url, None).await.status(), 200, "{url}");
    }
});
