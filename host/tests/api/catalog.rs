//! The catalog plugin over HTTP: categories, product listing/search/filters/sorts,
//! admin CRUD, stock changes (including concurrent ones), the seeded catalog, and that
//! the internal routes stay internal.

use crate::helpers::*;

const PRODUCT_KEYS: [&str; 15] = [
    "id",
    "sku",
    "name",
    "description",
    "category_id",
    "brand",
    "unit",
    "price",
    "mrp",
    "discount_percent",
    "stock",
    "is_active",
    "image_url",
    "created_at",
    "updated_at",
];

fn names(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Names listed for `category=slug&query`.
async fn names_in(app: &TestApp, slug: &str, query: &str) -> Vec<String> {
    let r = app
        .get(&format!("/api/v1/products?category={slug}&{query}"), None)
        .await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    names(&r)
}

fn product_body(app: &TestApp, category_id: &str) -> Value {
    json!({
        "sku": app.unique("SKU"),
        "name": "Test Product",
        "description": "A product made by the tests",
        "category_id": category_id,
        "brand": "Testbrand",
        "unit": "1 kg",
        "price": 9000,
        "mrp": 10000,
        "stock": 10,
        "image_url": "https://img.kirana.example/products/test.jpg"
    })
}

/// Creates a product from `product_body` with `changes` merged in.
async fn product(app: &TestApp, admin: &str, category_id: &str, changes: Value) -> Value {
    let mut body = product_body(app, category_id);
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app.post("/api/v1/products", Some(admin), body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

fn id_of(p: &Value) -> String {
    p["id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------- seeded catalog

backend_test!(catalog_seed_has_categories_and_products, |app| {
    let r = app.get("/api/v1/categories", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    assert!(items.len() >= 8);
    for slug in [
        "fruits-vegetables",
        "dairy-bread",
        "snacks",
        "beverages",
        "staples",
        "household",
        "personal-care",
        "frozen",
    ] {
        let c = items
            .iter()
            .find(|c| c["slug"] == slug)
            .unwrap_or_else(|| panic!("{slug}"));
        assert!(c["product_count"].as_i64().unwrap() >= 10, "{c}");
        assert!(c["id"].is_string() && c["name"].is_string());
    }
    let sum: i64 = items
        .iter()
        .map(|c| c["product_count"].as_i64().unwrap())
        .sum();
    assert!(sum >= 150, "{sum}");

    let r = app.get("/api/v1/products?page_size=100", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["total"].as_i64().unwrap() >= 150);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 100);
    for p in r.body["items"].as_array().unwrap() {
        for k in PRODUCT_KEYS {
            assert!(p.get(k).is_some(), "{k} missing in {p}");
        }
        let (price, mrp) = (p["price"].as_i64().unwrap(), p["mrp"].as_i64().unwrap());
        assert!(price >= 1 && price <= mrp, "{p}");
        let expected = ((mrp - price) as f64 * 100.0 / mrp as f64).round() as i64;
        assert_eq!(p["discount_percent"].as_i64().unwrap(), expected, "{p}");
        assert_eq!(p["is_active"], true);
        assert!(p["stock"].as_i64().unwrap() > 0);
        // Seeded products show their generated illustration (tests/api/images.rs).
        assert_eq!(p["image_url"], p["images"][0]["url"], "{p}");
    }
});

backend_test!(catalog_seed_has_known_products, |app| {
    let r = app.get("/api/v1/products?q=amul%20taaza", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let milk = &r.body["items"][0];
    assert_eq!(milk["name"], "Amul Taaza Toned Milk", "{}", r.text);
    assert_eq!(milk["brand"], "Amul");
    assert_eq!(milk["unit"], "500 ml");
    assert_eq!(
        (milk["price"].as_i64(), milk["mrp"].as_i64()),
        (Some(2700), Some(2800))
    );
    assert_eq!(milk["discount_percent"], 4);
    for q in [
        "aashirvaad",
        "tata%20salt",
        "bhujia",
        "fortune%20sunflower",
        "maggi",
        "parle-g",
        "surf%20excel",
        "dettol",
        "onion",
        "tomato",
    ] {
        let r = app.get(&format!("/api/v1/products?q={q}"), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["total"].as_i64().unwrap() >= 1, "nothing for {q}");
    }
});

// ---------------------------------------------------------------- categories

backend_test!(catalog_category_create_and_count, |app| {
    let admin = app.admin_token().await;
    let w = app.word("baby");
    let name = format!("Baby Care & Toys {w}");
    let r = app
        .post("/api/v1/categories", Some(&admin), json!({"name": name}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["slug"], format!("baby-care-toys-{w}"));
    assert_eq!(r.body["name"], name);
    assert_eq!(r.body["product_count"], 0);
    let cat_id = id_of(&r.body);

    // product_count counts active products only.
    product(app, &admin, &cat_id, json!({})).await;
    let gone = product(app, &admin, &cat_id, json!({})).await;
    product(app, &admin, &cat_id, json!({"is_active": false})).await;
    let r = app
        .delete(&format!("/api/v1/products/{}", id_of(&gone)), Some(&admin))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app.get("/api/v1/categories", None).await;
    let c = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == cat_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(c["product_count"], 1, "{c}");
});

backend_test!(catalog_category_slug_rules, |app| {
    let admin = app.admin_token().await;
    let slug = app.word("slug");
    let r = app
        .post(
            "/api/v1/categories",
            Some(&admin),
            json!({"name": "Given", "slug": slug}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["slug"], slug.as_str());

    // Taken slug, given or derived.
    let r = app
        .post(
            "/api/v1/categories",
            Some(&admin),
            json!({"name": "Again", "slug": slug}),
        )
        .await;
    assert_error(&r, 409, "already_exists");
    let r = app
        .post("/api/v1/categories", Some(&admin), json!({"name": slug}))
        .await;
    assert_error(&r, 409, "already_exists");
    let r = app
        .post(
            "/api/v1/categories",
            Some(&admin),
            json!({"name": "Snacks"}),
        )
        .await;
    assert_error(&r, 409, "already_exists");

    for bad in [
        json!("Bad Slug"),
        json!("UPPER"),
        json!("a--b"),
        json!("-a"),
        json!(""),
        json!(7),
    ] {
        let r = app
            .post(
                "/api/v1/categories",
                Some(&admin),
                json!({"name": "X", "slug": bad}),
            )
            .await;
        assert_error(&r, 400, "validation_failed");
        assert_eq!(fields(&r), ["slug"], "{bad}");
    }
    let r = app
        .post(
            "/api/v1/categories",
            Some(&admin),
            json!({"slug": "no-name"}),
        )
        .await;
    assert_error(&r, 400, "validation_failed");
    assert_eq!(fields(&r), ["name"]);
    let r = app
        .post("/api/v1/categories", Some(&admin), json!({"name": ""}))
        .await;
    assert_eq!(fields(&r), ["name"]);
    let r = app
        .post("/api/v1/categories", Some(&admin), json!({"name": "!!!"}))
        .await;
    assert_error(&r, 400, "validation_failed");
    assert_eq!(fields(&r), ["slug"]);
});

backend_test!(catalog_category_create_needs_admin_and_json, |app| {
    let admin = app.admin_token().await;
    let customer = app.customer().await;
    let body = json!({"name": "Nope"});
    let r = app.post("/api/v1/categories", None, body.clone()).await;
    assert_error(&r, 401, "unauthorized");
    let r = app
        .post("/api/v1/categories", Some("not.a.token"), body.clone())
        .await;
    assert_error(&r, 401, "unauthorized");
    let r = app
        .post("/api/v1/categories", Some(&customer.token), body)
        .await;
    assert_error(&r, 403, "forbidden");
    app.assert_rejects_bad_bodies(
        "POST",
        "/api/v1/categories",
        Some(&admin),
        b"{\"name\":\"X\"}",
    )
    .await;
    let r = app
        .raw(
            "POST",
            "/api/v1/categories",
            Some(&admin),
            Some("application/json"),
            b"[1]".to_vec(),
        )
        .await;
    assert_error(&r, 400, "validation_failed");
});

// ---------------------------------------------------------------- listing

backend_test!(catalog_list_paging_and_default_order, |app| {
    let r = app.get("/api/v1/products", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["page"].as_i64(), r.body["page_size"].as_i64()),
        (Some(1), Some(20))
    );
    let total = r.body["total"].as_i64().unwrap();
    let first = names(&r);
    assert_eq!(first.len(), 20);
    // Default order: by name, case-insensitively.
    let mut sorted = first.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(first, sorted);

    let r = app.get("/api/v1/products?page=2&page_size=20", None).await;
    assert_eq!(r.body["total"].as_i64(), Some(total));
    let second = names(&r);
    assert!(second[0].to_lowercase() >= first[19].to_lowercase());

    // Page past the end: empty, true total.
    let r = app.get("/api/v1/products?page=1000", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total"].as_i64(), Some(total));

    for (q, field) in [
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=2.5", "page_size"),
    ] {
        let r = app.get(&format!("/api/v1/products?{q}"), None).await;
        assert_error(&r, 400, "validation_failed");
        assert!(fields(&r).contains(&field.to_string()), "{q}: {}", r.text);
    }

    // Public, with or without a token.
    let customer = app.customer().await;
    let r = app.get("/api/v1/products", Some(&customer.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
});

backend_test!(catalog_list_category_filter, |app| {
    let admin = app.admin_token().await;
    let (cat_id, slug) = app.new_category(&admin).await;
    let a = product(app, &admin, &cat_id, json!({"name": "Alpha"})).await;
    let b = product(app, &admin, &cat_id, json!({"name": "Beta"})).await;
    for filter in [cat_id.as_str(), slug.as_str()] {
        let r = app
            .get(&format!("/api/v1/products?category={filter}"), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["total"], 2, "{}", r.text);
        assert_eq!(names(&r), ["Alpha", "Beta"]);
        assert_eq!(r.body["items"][0]["id"], a["id"]);
        assert_eq!(r.body["items"][1]["id"], b["id"]);
    }
    let r = app
        .get("/api/v1/products?category=snacks&page_size=100", None)
        .await;
    let snacks = r.body["items"].as_array().unwrap();
    assert!(!snacks.is_empty());
    let snack_cat = snacks[0]["category_id"].clone();
    assert!(snacks.iter().all(|p| p["category_id"] == snack_cat));

    let r = app
        .get("/api/v1/products?category=no-such-category", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total"], 0);
});

backend_test!(
    catalog_search_ranks_name_over_brand_over_description,
    |app| {
        let admin = app.admin_token().await;
        let (cat_id, _) = app.new_category(&admin).await;
        let token = app.word("zq");
        let desc_only = product(
            app,
            &admin,
            &cat_id,
            json!({"name": "Aaa Plain", "description": format!("Goes well with {token} dishes")}),
        )
        .await;
        let brand = product(
            app,
            &admin,
            &cat_id,
            json!({"name": "Bbb Thing", "brand": format!("{token} Foods"), "description": "x"}),
        )
        .await;
        let named = product(
            app,
            &admin,
            &cat_id,
            json!({"name": format!("Zzz {token} Special"), "description": "x"}),
        )
        .await;
        product(
            app,
            &admin,
            &cat_id,
            json!({"name": "Unrelated", "description": "x"}),
        )
        .await;

        let upper = token.to_uppercase();
        let r = app.get(&format!("/api/v1/products?q={upper}"), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["total"], 3, "{}", r.text);
        let ids: Vec<&Value> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["id"])
            .collect();
        assert_eq!(
            ids,
            [&named["id"], &brand["id"], &desc_only["id"]],
            "{}",
            r.text
        );

        // Explicit sort wins over relevance.
        let r = app
            .get(&format!("/api/v1/products?q={token}&sort=name"), None)
            .await;
        assert_eq!(names(&r)[0], "Aaa Plain");

        // Category names are searched too.
        let cat_name_word = {
            let r = app.get("/api/v1/categories", None).await;
            let c = r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == cat_id.as_str())
                .cloned()
                .unwrap();
            c["name"]
                .as_str()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .to_string()
        };
        let r = app
            .get(&format!("/api/v1/products?q={cat_name_word}"), None)
            .await;
        assert_eq!(r.body["total"], 4, "{}", r.text);

        // Several words must all match; nothing matches → empty.
        let r = app
            .get(&format!("/api/v1/products?q={token}%20special"), None)
            .await;
        assert_eq!(r.body["total"], 1, "{}", r.text);
        let r = app
            .get(
                &format!("/api/v1/products?q={token}%20nothinglikethis"),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["items"], json!([]));
        // LIKE wildcards in q match themselves: nothing has `_` or `%%` in it, and
        // `100%` finds only what says 100%.
        for q in ["_", "%25%25", "zz%25"] {
            let r = app.get(&format!("/api/v1/products?q={q}"), None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["total"], 0, "{q}: {}", r.text);
        }
        let r = app.get("/api/v1/products?q=100%25", None).await;
        assert!(r.body["total"].as_i64().unwrap() >= 1, "{}", r.text);
        for p in r.body["items"].as_array().unwrap() {
            let text = format!("{} {} {}", p["name"], p["brand"], p["description"]).to_lowercase();
            assert!(text.contains("100%"), "{p}");
        }
    }
);

backend_test!(catalog_price_and_stock_filters, |app| {
    let admin = app.admin_token().await;
    let (cat_id, slug) = app.new_category(&admin).await;
    product(
        app,
        &admin,
        &cat_id,
        json!({"name": "P100", "price": 100, "mrp": 100}),
    )
    .await;
    product(
        app,
        &admin,
        &cat_id,
        json!({"name": "P200", "price": 200, "mrp": 250, "stock": 0}),
    )
    .await;
    product(
        app,
        &admin,
        &cat_id,
        json!({"name": "P300", "price": 300, "mrp": 300}),
    )
    .await;
    assert_eq!(
        names_in(app, &slug, "min_price=200").await,
        ["P200", "P300"]
    );
    assert_eq!(
        names_in(app, &slug, "max_price=200").await,
        ["P100", "P200"]
    );
    assert_eq!(
        names_in(app, &slug, "min_price=200&max_price=200").await,
        ["P200"]
    );
    assert_eq!(
        names_in(app, &slug, "min_price=0&max_price=99").await,
        Vec::<String>::new()
    );
    assert_eq!(
        names_in(app, &slug, "in_stock=true").await,
        ["P100", "P300"]
    );
    assert_eq!(
        names_in(app, &slug, "in_stock=false").await,
        ["P100", "P200", "P300"]
    );
    assert_eq!(
        names_in(app, &slug, "sort=price_asc").await,
        ["P100", "P200", "P300"]
    );
    assert_eq!(
        names_in(app, &slug, "sort=price_desc").await,
        ["P300", "P200", "P100"]
    );
    assert_eq!(
        names_in(app, &slug, "sort=newest").await,
        ["P300", "P200", "P100"]
    );
    assert_eq!(
        names_in(app, &slug, "sort=name").await,
        ["P100", "P200", "P300"]
    );
    assert_eq!(
        names_in(app, &slug, "sort=relevance").await,
        ["P100", "P200", "P300"]
    );

    for (q, field) in [
        ("min_price=abc", "min_price"),
        ("min_price=-1", "min_price"),
        ("max_price=10.5", "max_price"),
        ("max_price=-5", "max_price"),
        ("sort=cheapest", "sort"),
        ("in_stock=maybe", "in_stock"),
    ] {
        let r = app.get(&format!("/api/v1/products?{q}"), None).await;
        assert_error(&r, 400, "validation_failed");
        assert_eq!(fields(&r), [field], "{q}");
    }
    let r = app.get("/api/v1/products?min_price=x&sort=bad", None).await;
    assert_eq!(fields(&r), ["min_price", "sort"]);
});

// ---------------------------------------------------------------- one product

backend_test!(catalog_get_product, |app| {
    let admin = app.admin_token().await;
    let (cat_id, _) = app.new_category(&admin).await;
    let p = product(app, &admin, &cat_id, json!({})).await;
    let r = app
        .get(&format!("/api/v1/products/{}", id_of(&p)), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, p);
    let r = app.get("/api/v1/products/prd_doesnotexist", None).await;
    assert_error(&r, 404, "not_found");
    let r = app
        .get("/api/v1/products/prd_doesnotexist", Some(&admin))
        .await;
    assert_error(&r, 404, "not_found");
});

// ---------------------------------------------------------------- create

backend_test!(catalog_create_product, |app| {
    let admin = app.admin_token().await;
    let (cat_id, _) = app.new_category(&admin).await;
    let body = product_body(app, &cat_id);
    let r = app
        .post("/api/v1/products", Some(&admin), body.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for k in PRODUCT_KEYS {
        assert!(r.body.get(k).is_some(), "{k} missing: {}", r.text);
    }
    for k in [
        "sku",
        "name",
        "description",
        "category_id",
        "brand",
        "unit",
        "price",
        "mrp",
        "stock",
        "image_url",
    ] {
        assert_eq!(r.body[k], body[k], "{k}");
    }
    assert_eq!(r.body["discount_percent"], 10);
    assert_eq!(r.body["is_active"], true);
    assert!(r.body["id"].as_str().unwrap().len() > 3);
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));

    // Optional fields may be left out; rounding is half up.
    let r = app
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"sku": app.unique("SKU"), "name": "  Minimal  ", "category_id": cat_id,
                   "unit": "1 pc", "price": 995, "mrp": 1000, "stock": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "Minimal");
    assert_eq!(r.body["discount_percent"], 1);
    assert_eq!(r.body["brand"], Value::Null);
    assert_eq!(r.body["stock"], 0);
    let p = product(app, &admin, &cat_id, json!({"price": 1, "mrp": 3})).await;
    assert_eq!(p["discount_percent"], 67);

    // Duplicate SKU.
    let r = app.post("/api/v1/products", Some(&admin), body).await;
    assert_error(&r, 409, "already_exists");
});

backend_test!(catalog_create_product_validation, |app| {
    let admin = app.admin_token().await;
    let (cat_id, _) = app.new_category(&admin).await;

    // Every bad field at once.
    let r = app
        .post(
            "/api/v1/products",
            Some(&admin),
            json!({"sku": "", "name": "", "category_id": "cat_nope", "unit": "",
                   "price": 0, "mrp": 0, "stock": -1}),
        )
        .await;
    assert_error(&r, 400, "validation_failed");
    let f = fields(&r);
    for field in [
        "sku",
        "name",
        "category_id",
        "unit",
        "price",
        "mrp",
        "stock",
    ] {
        assert!(f.contains(&field.to_string()), "{field} not in {f:?}");
    }
    let r = app.post("/api/v1/products", Some(&admin), json!({})).await;
    assert_error(&r, 400, "validation_failed");
    assert!(fields(&r).len() >= 7, "{}", r.text);

    let cases = [
        (json!({"mrp": 8999}), "mrp"),
        (json!({"price": 10.5}), "price"),
        (json!({"price": "100"}), "price"),
        (json!({"mrp": 100.0}), "mrp"),
        (json!({"stock": 1.5}), "stock"),
        (json!({"stock": -1}), "stock"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"category_id": "cat_nope"}), "category_id"),
        (json!({"sku": "s".repeat(65)}), "sku"),
        (json!({"unit": "u".repeat(33)}), "unit"),
        (json!({"is_active": "yes"}), "is_active"),
    ];
    for (change, field) in cases {
        let mut body = product_body(app, &cat_id);
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app.post("/api/v1/products", Some(&admin), body).await;
        assert_error(&r, 400, "validation_failed");
        assert_eq!(fields(&r), [field], "{change}");
    }
    let mut ok = product_body(app, &cat_id);
    ok["name"] = json!("n".repeat(200));
    ok["price"] = json!(10000);
    let r = app.post("/api/v1/products", Some(&admin), ok).await;
    assert_eq!(r.status, 201, "{}", r.text);

    app.assert_rejects_bad_bodies("POST", "/api/v1/products", Some(&admin), b"{}")
        .await;
    let r = app
        .raw(
            "POST",
            "/api/v1/products",
            Some(&admin),
            Some("application/json"),
            b"{\"sku\":".to_vec(),
        )
        .await;
    assert_error(&r, 400, "invalid_json");
});

backend_test!(catalog_admin_routes_need_admin, |app| {
    let admin = app.admin_token().await;
    let customer = app.customer().await;
    let (cat_id, _) = app.new_category(&admin).await;
    let p = product(app, &admin, &cat_id, json!({})).await;
    let path = format!("/api/v1/products/{}", id_of(&p));
    let stock = format!("{path}/stock");
    let body = product_body(app, &cat_id);

    for token in [
        None,
        Some("forged.token.value"),
        Some(customer.token.as_str()),
    ] {
        let (status, code) = if token == Some(customer.token.as_str()) {
            (403, "forbidden")
        } else {
            (401, "unauthorized")
        };
        assert_error(
            &app.post("/api/v1/products", token, body.clone()).await,
            status,
            code,
        );
        assert_error(&app.put(&path, token, body.clone()).await, status, code);
        assert_error(&app.delete(&path, token).await, status, code);
        assert_error(
            &app.patch(&stock, token, json!({"delta": 1})).await,
            status,
            code,
        );
    }
    // Nothing changed.
    let r = app.get(&path, None).await;
    assert_eq!(r.body, p);
});

// ---------------------------------------------------------------- replace

backend_test!(catalog_put_replaces_the_product, |app| {
    let admin = app.admin_token().await;
    let (cat_id, _) = app.new_category(&admin).await;
    let (other_cat, _) = app.new_category(&admin).await;
    let p = product(app, &admin, &cat_id, json!({})).await;
    let path = format!("/api/v1/products/{}", id_of(&p));

    let new_sku = app.unique("SKU");
    let body = json!({"sku": new_sku, "name": "Renamed", "category_id": other_cat,
                      "unit": "2 kg", "price": 1500, "mrp": 2000, "stock": 7});
    let r = app.put(&path, Some(&admin), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["id"], p["id"]);
    assert_eq!(r.body["sku"], new_sku.as_str());
    assert_eq!(r.body["name"], "Renamed");
    assert_eq!(r.body["category_id"], other_cat.as_str());
    assert_eq!(r.body["discount_percent"], 25);
    // Full replace: optional fields left out are cleared.
    assert_eq!(r.body["brand"], Value::Null);
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["is_active"], true);
    assert_eq!(r.body["created_at"], p["created_at"]);
    let r2 = app.get(&path, None).await;
    assert_eq!(r2.body, r.body);

    // The whole product as GET shows it can be sent back.
    let mut round = r.body.clone();
    round["price"] = json!(1800);
    let r = app.put(&path, Some(&admin), round).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["price"], 1800);

    // Errors.
    let other = product(app, &admin, &cat_id, json!({})).await;
    let mut dup = product_body(app, &cat_id);
    dup["sku"] = other["sku"].clone();
    assert_error(
        &app.put(&path, Some(&admin), dup).await,
        409,
        "already_exists",
    );
    let r = app
        .put(&path, Some(&admin), json!({"name": "only a name"}))
        .await;
    assert_error(&r, 400, "validation_failed");
    assert!(fields(&r).contains(&"sku".to_string()));
    let mut bad = product_body(app, &cat_id);
    bad["price"] = json!(10.5);
    assert_error(
        &app.put(&path, Some(&admin), bad).await,
        400,
        "validation_failed",
    );
    let r = app
        .put(
            "/api/v1/products/prd_doesnotexist",
            Some(&admin),
            product_body(app, &cat_id),
        )
        .await;
    assert_error(&r, 404, "not_found");

    // is_active: false through PUT hides it.
    let mut off = product_body(app, &cat_id);
    off["is_active"] = json!(false);
    let r = app.put(&path, Some(&admin), off).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_active"], false);
    assert_error(&app.get(&path, None).await, 404, "not_found");
});

// ---------------------------------------------------------------- delete

backend_test!(catalog_delete_is_soft_and_final, |app| {
    let admin = app.admin_token().await;
    let (cat_id, slug) = app.new_category(&admin).await;
    let p = product(app, &admin, &cat_id, json!({})).await;
    let path = format!("/api/v1/products/{}", id_of(&p));

    let r = app.delete(&path, Some(&admin)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(&app.get(&path, None).await, 404, "not_found");
    assert_error(&app.get(&path, Some(&admin)).await, 404, "not_found");
    assert_error(&app.delete(&path, Some(&admin)).await, 404, "not_found");
    assert_error(
        &app.put(&path, Some(&admin), product_body(app, &cat_id))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.patch(&format!("{path}/stock"), Some(&admin), json!({"delta": 1}))
            .await,
        404,
        "not_found",
    );
    let r = app
        .get(&format!("/api/v1/products?category={slug}"), None)
        .await;
    assert_eq!(r.body["total"], 0);
    // The SKU stays taken by the deleted product.
    let mut again = product_body(app, &cat_id);
    again["sku"] = p["sku"].clone();
    assert_error(
        &app.post("/api/v1/products", Some(&admin), again).await,
        409,
        "already_exists",
    );

    assert_error(
        &app.delete("/api/v1/products/prd_doesnotexist", Some(&admin))
            .await,
        404,
        "not_found",
    );
});

// ---------------------------------------------------------------- stock

backend_test!(catalog_stock_patch, |app| {
    let admin = app.admin_token().await;
    let (cat_id, _) = app.new_category(&admin).await;
    let p = product(app, &admin, &cat_id, json!({"stock": 10})).await;
    let path = format!("/api/v1/products/{}/stock", id_of(&p));

    let r = app.patch(&path, Some(&admin), json!({"delta": 5})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["stock"], 15);
    assert_eq!(r.body["id"], p["id"]);
    let r = app.patch(&path, Some(&admin), json!({"delta": -15})).await;
    assert_eq!(r.body["stock"], 0, "{}", r.text);
    let r = app.patch(&path, Some(&admin), json!({"set": 3})).await;
    assert_eq!(r.body["stock"], 3, "{}", r.text);

    let r = app.patch(&path, Some(&admin), json!({"delta": -4})).await;
    assert_error(&r, 409, "insufficient_stock");
    let r = app
        .get(&format!("/api/v1/products/{}", id_of(&p)), None)
        .await;
    assert_eq!(r.body["stock"], 3);

    for bad in [
        json!({}),
        json!({"delta": 1, "set": 1}),
        json!({"set": -1}),
        json!({"delta": 1.5}),
        json!({"delta": "1"}),
        json!({"set": null, "delta": null}),
    ] {
        let r = app.patch(&path, Some(&admin), bad.clone()).await;
        assert_error(&r, 400, "validation_failed");
        assert!(!fields(&r).is_empty(), "{bad}");
    }
    let r = app
        .raw(
            "PATCH",
            &path,
            Some(&admin),
            Some("text/plain"),
            b"{\"delta\":1}".to_vec(),
        )
        .await;
    assert_error(&r, 415, "unsupported_media_type");
    let r = app
        .patch(
            "/api/v1/products/prd_doesnotexist/stock",
            Some(&admin),
            json!({"set": 1}),
        )
        .await;
    assert_error(&r, 404, "not_found");
    let r = app
        .get(&format!("/api/v1/products/{}", id_of(&p)), None)
        .await;
    assert_eq!(r.body["stock"], 3);
});

backend_test!(catalog_concurrent_stock_decrements_never_oversell, |app| {
    let admin = app.admin_token().await;
    let (cat_id, _) = app.new_category(&admin).await;
    let p = product(app, &admin, &cat_id, json!({"stock": 5})).await;
    let path = format!("/api/v1/products/{}/stock", id_of(&p));

    let calls = (0..10).map(|_| app.patch(&path, Some(&admin), json!({"delta": -1})));
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let short = results
        .iter()
        .filter(|r| r.status == 409 && r.body["error"]["code"] == "insufficient_stock")
        .count();
    assert_eq!(
        (ok, short),
        (5, 5),
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    let r = app
        .get(&format!("/api/v1/products/{}", id_of(&p)), None)
        .await;
    assert_eq!(r.body["stock"], 0);

    // Concurrent increments are not lost either.
    let calls = (0..10).map(|_| app.patch(&path, Some(&admin), json!({"delta": 2})));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.status == 200));
    let r = app
        .get(&format!("/api/v1/products/{}", id_of(&p)), None)
        .await;
    assert_eq!(r.body["stock"], 20);
});

// ---------------------------------------------------------------- internal routes

backend_test!(catalog_internal_routes_are_not_exposed, |app| {
    let admin = app.admin_token().await;
    let listed = app.get("/api/v1/products?page_size=1", None).await;
    let id = listed.body["items"][0]["id"].clone();
    let lines = json!({"items": [{"product_id": id, "quantity": 1}]});
    for token in [None, Some(admin.as_str())] {
        let r = app
            .post("/internal/products/lookup", token, json!({"ids": [id]}))
            .await;
        assert_error(&r, 404, "not_found");
        let r = app
            .post("/internal/stock/holds", token, lines.clone())
            .await;
        assert_error(&r, 404, "not_found");
        let r = app
            .post("/internal/stock/holds/hld_x/release", token, json!({}))
            .await;
        assert_error(&r, 404, "not_found");
        let r = app.get("/internal/products/lookup", token).await;
        assert_eq!(r.status, 404, "{}", r.text);
    }
    // And the stock did not move.
    let r = app
        .get(&format!("/api/v1/products/{}", id.as_str().unwrap()), None)
        .await;
    assert_eq!(r.body["stock"], listed.body["items"][0]["stock"]);
});

// ---------------------------------------------------------------- listing cache

/// The one product listed in `slug`'s listing (asserting there is exactly one).
async fn listed_one(app: &TestApp, slug: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/products?category={slug}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 1, "{}", r.text);
    r.body["items"][0].clone()
}

/// Sets a product's price in the catalog's own database, behind the plugin's back
/// (as an operator's manual fix would).
async fn set_price_directly(app: &TestApp, product_id: &str, price: i64) {
    use kirana::storage::PluginDb;
    let platform = &app.app().platform;
    let catalog = platform.registry.get("catalog").expect("catalog is loaded");
    let changed = match &catalog.ctx.db {
        PluginDb::Postgres(pool) => {
            sqlx::query("UPDATE products SET price = $1, mrp = $1 WHERE id = $2")
                .bind(price)
                .bind(product_id)
                .execute(pool)
                .await
                .expect("updating the price")
                .rows_affected()
        }
        PluginDb::Sqlite(_) => {
            let path = platform.config.data_dir.join("plugins").join("catalog.db");
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                "sqlite://{}",
                path.display()
            ))
            .await
            .expect("opening the catalog's database");
            let changed = sqlx::query("UPDATE products SET price = ?1, mrp = ?1 WHERE id = ?2")
                .bind(price)
                .bind(product_id)
                .execute(&mut conn)
                .await
                .expect("updating the price")
                .rows_affected();
            let _ = sqlx::Connection::close(conn).await;
            changed
        }
    };
    assert_eq!(changed, 1);
}

backend_test!(
    listing_pages_are_cached_and_every_catalog_write_shows_at_once,
    |app| {
        let admin = app.admin_token().await;
        let (category_id, slug) = app.new_category(&admin).await;
        let empty = app
            .get(&format!("/api/v1/products?category={slug}"), None)
            .await;
        assert_eq!(empty.body["total"], 0, "{}", empty.text);

        let p = product(app, &admin, &category_id, json!({"stock": 10})).await;
        let id = id_of(&p);
        assert_eq!(listed_one(app, &slug).await["stock"], 10);

        // Create and delete: listed and gone at once although the page was cached.
        let other = product(app, &admin, &category_id, json!({"name": "Zz last"})).await;
        let r = app
            .get(&format!("/api/v1/products?category={slug}"), None)
            .await;
        assert_eq!(r.body["total"], 2, "{}", r.text);
        let r = app
            .delete(&format!("/api/v1/products/{}", id_of(&other)), Some(&admin))
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(listed_one(app, &slug).await["id"], json!(id));

        // A change behind the plugin's back stays unseen while the page is cached...
        set_price_directly(app, &id, 7000).await;
        assert_eq!(listed_one(app, &slug).await["price"], 9000);
        // ...and any write through the catalog shows it.
        let r = app
            .patch(
                &format!("/api/v1/products/{id}/stock"),
                Some(&admin),
                json!({"set": 4}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let listed = listed_one(app, &slug).await;
        assert_eq!(
            (listed["price"].clone(), listed["stock"].clone()),
            (json!(7000), json!(4))
        );

        // Replace (PUT).
        let mut body = product_body(app, &category_id);
        body["sku"] = p["sku"].clone();
        body["price"] = json!(8000);
        body["stock"] = json!(6);
        let r = app
            .put(&format!("/api/v1/products/{id}"), Some(&admin), body)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(listed_one(app, &slug).await["price"], 8000);

        // Holds and their release (what orders do) move the listed stock.
        let lines = json!({"items": [{"product_id": id, "quantity": 2}]});
        let (status, hold) = crate::shop::call_internal(
            app,
            "catalog",
            "POST",
            "/internal/stock/holds",
            &[],
            Some(lines),
        )
        .await;
        assert_eq!(status, 201, "{hold}");
        assert_eq!(listed_one(app, &slug).await["stock"], 4);
        let hold_id = hold["hold_id"].as_str().expect("hold_id");
        let (status, body) = crate::shop::call_internal(
            app,
            "catalog",
            "POST",
            "/internal/stock/holds/{id}/release",
            &[("id", hold_id)],
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(listed_one(app, &slug).await["stock"], 6);

        // Delete: gone from the listing.
        let r = app
            .delete(&format!("/api/v1/products/{id}"), Some(&admin))
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = app
            .get(&format!("/api/v1/products?category={slug}"), None)
            .await;
        assert_eq!(r.body["total"], 0, "{}", r.text);
    }
);

backend_test!(
    listing_cache_can_be_turned_off,
    "[catalog]\nlisting_cache_secs = 0\n",
    |app| {
        let admin = app.admin_token().await;
        let (category_id, slug) = app.new_category(&admin).await;
        let p = product(app, &admin, &category_id, json!({})).await;
        assert_eq!(listed_one(app, &slug).await["price"], 9000);
        set_price_directly(app, &id_of(&p), 7000).await;
        assert_eq!(listed_one(app, &slug).await["price"], 7000);
    }
);
