//! Catalog search over HTTP (issue 15), on SQLite (FTS5) and PostgreSQL (tsvector +
//! GIN): prefix, plural, case, typo, synonyms, ranking, facets, suggest, hostile input,
//! the index following product writes and their rollbacks, and the migration that
//! indexes a catalog written before search existed.

use crate::helpers::*;

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

fn ids(r: &Resp) -> Vec<String> {
    r.body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn search(app: &TestApp, q: &str) -> Resp {
    let r = app
        .get(&format!("/api/v1/products?q={}", encode(q)), None)
        .await;
    assert_eq!(r.status, 200, "{q}: {}", r.text);
    r
}

async fn suggest(app: &TestApp, q: &str) -> Resp {
    app.get(&format!("/api/v1/products/suggest?q={}", encode(q)), None)
        .await
}

/// Percent-encodes everything but ASCII letters and digits.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn new_product(app: &TestApp, admin: &str, category_id: &str, changes: Value) -> String {
    let mut body = json!({
        "sku": app.unique("SKU"),
        "name": "Plain Item",
        "description": "Nothing special",
        "category_id": category_id,
        "unit": "1 pc",
        "price": 1000,
        "mrp": 1000,
        "stock": 10
    });
    for (k, v) in changes.as_object().expect("an object") {
        body[k] = v.clone();
    }
    let r = app.post("/api/v1/products", Some(admin), body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().expect("an id").to_string()
}

/// A number from the catalog's own database (behind the plugin's back).
async fn catalog_count(app: &TestApp, statement: &str) -> i64 {
    use kirana::storage::PluginDb;
    let platform = &app.app().platform;
    let catalog = platform.registry.get("catalog").expect("catalog is loaded");
    match &catalog.ctx.db {
        PluginDb::Postgres(pool) => sqlx::query_scalar::<_, i64>(statement)
            .fetch_one(pool)
            .await
            .expect("counting"),
        PluginDb::Sqlite(_) => {
            let path = platform.config.data_dir.join("plugins").join("catalog.db");
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                "sqlite://{}",
                path.display()
            ))
            .await
            .expect("opening the catalog's database");
            let n = sqlx::query_scalar::<_, i64>(statement)
                .fetch_one(&mut conn)
                .await
                .expect("counting");
            let _ = sqlx::Connection::close(conn).await;
            n
        }
    }
}

/// Runs SQL in the catalog's own database.
async fn catalog_sql(app: &TestApp, statement: &str) {
    let platform = &app.app().platform;
    let catalog = platform.registry.get("catalog").expect("catalog is loaded");
    kirana::capabilities::sql::execute_raw(&catalog.ctx.db, statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e:#}"));
}

// ---------------------------------------------------------------- what matches

backend_test!(
    search_matches_prefixes_plurals_any_case_and_one_typo,
    |app| {
        // The word being typed is a prefix; a finished word (a space after it) is not.
        let r = search(app, "tom").await;
        assert_eq!(names(&r)[0], "Tomato", "{}", r.text);
        let r = search(app, "tom ").await;
        assert_eq!(r.body["total"], 0, "{}", r.text);
        let r = search(app, "amul gh").await;
        assert_eq!(names(&r), ["Amul Pure Ghee"], "{}", r.text);

        // Plurals and case: the singular finds plurals in texts and the other way round.
        for q in ["TOMATOES", "Tomatoes ", "tomato"] {
            let r = search(app, q).await;
            assert_eq!(names(&r)[0], "Tomato", "{q}: {}", r.text);
        }
        let r = search(app, "biscuit ").await;
        let plural = search(app, "biscuits ").await;
        assert!(r.body["total"].as_i64().unwrap() >= 5, "{}", r.text);
        assert_eq!(r.body["total"], plural.body["total"]);

        // One typo in a word of 5+ letters: extra, missing, wrong or swapped letter.
        for (typo, expected) in [
            ("bannana", "Banana Robusta"),
            ("tomatos", "Tomato"),
            ("tomaot ", "Tomato"),
            ("cabage", "Cabbage"),
            ("cucmber", "Cucumber"),
            ("hladiram bhujia", "Haldiram's Bhujia Sev"),
        ] {
            let r = search(app, typo).await;
            assert!(
                names(&r).iter().take(3).any(|n| n == expected),
                "{typo}: {}",
                r.text
            );
        }
        // Five letters are enough for a typo (a swap here); shorter words and two typos
        // are not corrected.
        let r = search(app, "onoin ").await;
        assert_eq!(names(&r)[0], "Onion", "{}", r.text);
        for q in ["mlik ", "bnanaa "] {
            let r = search(app, q).await;
            assert_eq!(r.body["total"], 0, "{q}: {}", r.text);
        }
    }
);

backend_test!(search_uses_the_shipped_synonyms, |app| {
    let r = search(app, "aata").await;
    assert_eq!(names(&r)[0], "Aashirvaad Shudh Chakki Atta", "{}", r.text);
    assert_eq!(r.body["total"], 2, "{}", r.text);
    // Both ways: curd finds the dahis (and the curds), dahi finds the curds.
    let r = search(app, "curd ").await;
    let found = names(&r);
    for n in ["Amul Masti Dahi", "Mother Dairy Classic Dahi"] {
        assert!(found.contains(&n.to_string()), "{n}: {}", r.text);
    }
    let r = search(app, "dahi ").await;
    assert!(
        names(&r).contains(&"Mother Dairy Mishti Doi".to_string()),
        "its description says curd: {}",
        r.text
    );
    let r = search(app, "jeera").await;
    assert_eq!(names(&r)[0], "Catch Cumin Seeds (Jeera)", "{}", r.text);
    // A synonym in a name ranks above the word itself in a description.
    let r = search(app, "haldi ").await;
    assert_eq!(names(&r)[0], "Everest Turmeric Powder", "{}", r.text);
});

backend_test!(
    search_synonyms_come_from_config,
    "[catalog]\nsynonyms = \"zorp > paneer; Flib = Ghee\"",
    |app| {
        let r = search(app, "zorp").await;
        assert!(r.body["total"].as_i64().unwrap() >= 2, "{}", r.text);
        assert!(
            names(&r)[..2].iter().all(|n| n.ends_with("Paneer")),
            "{}",
            r.text
        );
        let r = search(app, "flib").await;
        assert_eq!(names(&r), ["Amul Pure Ghee"], "{}", r.text);
        // The configured list replaces the shipped one.
        let r = search(app, "aata ").await;
        assert_eq!(r.body["total"], 0, "{}", r.text);
    }
);

// ---------------------------------------------------------------- ranking and facets

backend_test!(
    search_ranks_name_brand_category_description_then_stock,
    |app| {
        let admin = app.admin_token().await;
        let (cat, slug) = app.new_category(&admin).await;
        let (other_cat, _) = app.new_category(&admin).await;
        let token = app.word("rk");
        let desc = new_product(
            app,
            &admin,
            &cat,
            json!({"name": "Aaa Desc", "description": format!("Pairs with {token} well")}),
        )
        .await;
        let brand = new_product(
            app,
            &admin,
            &cat,
            json!({"name": "Bbb Brand", "brand": format!("{token} Foods")}),
        )
        .await;
        let named = new_product(
            app,
            &admin,
            &cat,
            json!({"name": format!("Zzz {token} Named Longer Name")}),
        )
        .await;
        let gone = new_product(
            app,
            &admin,
            &cat,
            json!({"name": format!("{token} Sold Out"), "stock": 0}),
        )
        .await;
        let r = search(app, &token.to_uppercase()).await;
        assert_eq!(r.body["total"], 4, "{}", r.text);
        assert_eq!(ids(&r), [named, brand, desc, gone.clone()], "{}", r.text);

        // The category's name is searched, below names and brands and above
        // descriptions; the out-of-stock product still comes last.
        let elsewhere = new_product(
            app,
            &admin,
            &other_cat,
            json!({"name": "Elsewhere", "description": format!("Not in {slug} at all")}),
        )
        .await;
        let r = search(app, &slug).await;
        assert_eq!(r.body["total"], 5, "{}", r.text);
        let order = ids(&r);
        assert_eq!(order[3], elsewhere, "{}", r.text);
        assert_eq!(order[4], gone, "{}", r.text);

        // An explicit sort wins over relevance.
        let r = app
            .get(&format!("/api/v1/products?q={token}&sort=name"), None)
            .await;
        assert_eq!(names(&r)[0], "Aaa Desc", "{}", r.text);
        // Filters apply to searches.
        let r = app
            .get(&format!("/api/v1/products?q={token}&in_stock=true"), None)
            .await;
        assert_eq!(r.body["total"], 3, "{}", r.text);
    }
);

backend_test!(search_answers_facets_of_all_matches, |app| {
    let admin = app.admin_token().await;
    let (cat_a, slug_a) = app.new_category(&admin).await;
    let (cat_b, slug_b) = app.new_category(&admin).await;
    let token = app.word("fc");
    for (cat, brand, stock) in [
        (&cat_a, Some("Alpha Co"), 5),
        (&cat_a, Some("Alpha Co"), 0),
        (&cat_a, None, 5),
        (&cat_b, Some("Beta Co"), 5),
    ] {
        let mut body = json!({"name": format!("{token} thing"), "stock": stock});
        if let Some(b) = brand {
            body["brand"] = json!(b);
        }
        new_product(app, &admin, cat, body).await;
    }
    // Paging does not change the facets: they count every match.
    let r = app
        .get(&format!("/api/v1/products?q={token}&page_size=1"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], 4);
    let facets = &r.body["facets"];
    assert_eq!(facets["category"][0]["slug"], slug_a.as_str(), "{}", r.text);
    assert_eq!(facets["category"][0]["count"], 3);
    assert_eq!(
        facets["category"][0]["name"],
        format!("Test {slug_a}").as_str()
    );
    assert_eq!(facets["category"][1]["slug"], slug_b.as_str());
    assert_eq!(facets["category"][1]["count"], 1);
    assert_eq!(facets["category"].as_array().unwrap().len(), 2);
    assert_eq!(
        facets["brand"],
        json!([{"name": "Alpha Co", "count": 2}, {"name": "Beta Co", "count": 1}]),
        "a product without a brand is in no brand facet: {}",
        r.text
    );
    // With a filter, the facets count what the filter keeps.
    let r = app
        .get(&format!("/api/v1/products?q={token}&in_stock=true"), None)
        .await;
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["facets"]["category"][0]["count"], 2);
    assert_eq!(r.body["facets"]["brand"][0]["count"], 1);
    // A search that finds nothing has empty facets; a listing without q has none.
    let r = search(app, &format!("{token} nothingatallhere")).await;
    assert_eq!(
        r.body["facets"],
        json!({"category": [], "brand": []}),
        "{}",
        r.text
    );
    let r = app.get("/api/v1/products", None).await;
    assert!(r.body.get("facets").is_none(), "{}", r.text);
});

// ---------------------------------------------------------------- suggest

backend_test!(suggest_completes_product_names, |app| {
    let r = suggest(app, "tom").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "Tomato", "{}", r.text);
    let mut keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["brand", "id", "name", "price", "unit"]);
    assert_eq!(items[0]["price"], 2400);
    assert_eq!(items[0]["unit"], "500 g");

    // At most 8, each name completing every word.
    let r = suggest(app, "amul").await;
    let found = names(&r);
    assert_eq!(found.len(), 8, "{}", r.text);
    assert!(found.iter().all(|n| n.starts_with("Amul")), "{}", r.text);
    let r = suggest(app, "amul but").await;
    assert_eq!(names(&r)[0], "Amul Butter Pasteurised", "{}", r.text);

    // Names only: "curry" is in descriptions, never in a name.
    let r = suggest(app, "curry").await;
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    // One typo in what is being typed.
    let r = suggest(app, "tamat").await;
    assert_eq!(names(&r)[0], "Tomato", "{}", r.text);
    let r = suggest(app, "bannan").await;
    assert_eq!(names(&r)[0], "Banana Robusta", "{}", r.text);

    // Nothing typed: nothing suggested; too long: 400.
    for q in ["", "   ", "*"] {
        let r = suggest(app, q).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["items"], json!([]));
    }
    let r = suggest(app, &"a".repeat(201)).await;
    r.assert_invalid_field("q");
});

// ---------------------------------------------------------------- hostile input

backend_test!(hostile_queries_are_words_or_a_clear_400, |app| {
    let long = "x".repeat(200);
    let hostile = [
        "\"",
        "\"\"",
        "*",
        "tom*",
        "NEAR",
        "NEAR(tea milk)",
        "tea OR milk",
        "tea AND NOT milk",
        "-milk",
        "milk -",
        "^milk",
        "name:milk",
        "{name}:milk",
        "name : milk",
        "'",
        "''",
        "tea' OR '1'='1",
        "\\",
        "%",
        "_",
        "(",
        ")",
        "a:*",
        "!milk & tea | x",
        "<->",
        "milk:*A",
        "\u{0}",
        "😀 milk",
        "चाय",
        "ÅÄÖ",
        long.as_str(),
    ];
    for q in hostile {
        for path in ["/api/v1/products?q=", "/api/v1/products/suggest?q="] {
            let r = app.get(&format!("{path}{}", encode(q)), None).await;
            if r.status == 400 {
                r.assert_error(400, "validation_failed");
            } else {
                assert_eq!(r.status, 200, "{path}{q:?}: {}", r.text);
                assert!(r.body["items"].is_array(), "{q:?}: {}", r.text);
            }
        }
    }
    // Quotes and operators are plain words: this still finds tea.
    let r = search(app, "\"tea\" *").await;
    assert!(r.body["total"].as_i64().unwrap() >= 1, "{}", r.text);
    // Too long or too many words: a 400 naming q, never a 5xx.
    let too_long = "x".repeat(201);
    let many = (0..11)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join("-");
    for q in [too_long.as_str(), many.as_str()] {
        for path in ["/api/v1/products?q=", "/api/v1/products/suggest?q="] {
            let r = app.get(&format!("{path}{}", encode(q)), None).await;
            r.assert_invalid_field("q");
        }
    }
});

// ---------------------------------------------------------------- writes and the index

backend_test!(the_index_follows_product_writes, |app| {
    let admin = app.admin_token().await;
    let (cat, _) = app.new_category(&admin).await;
    let before = app.word("old");
    let after = app.word("new");
    let id = new_product(
        app,
        &admin,
        &cat,
        json!({"name": format!("{before} Thing")}),
    )
    .await;
    assert_eq!(ids(&search(app, &before).await), std::slice::from_ref(&id));
    assert_eq!(
        names(&suggest(app, &before).await),
        [format!("{before} Thing")]
    );

    // A replace re-indexes it: the old name is gone, the new one found.
    let mut body = app.get(&format!("/api/v1/products/{id}"), None).await.body;
    body["name"] = json!(format!("{after} Thing"));
    let r = app
        .put(&format!("/api/v1/products/{id}"), Some(&admin), body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(search(app, &before).await.body["total"], 0);
    assert_eq!(ids(&search(app, &after).await), std::slice::from_ref(&id));
    assert_eq!(
        catalog_count(
            app,
            &format!("SELECT COUNT(*) FROM search_words WHERE word = '{before}' AND docs > 0")
        )
        .await,
        0,
        "the vocabulary forgets a word no product holds"
    );

    // A soft delete takes it out of search and suggestions.
    let r = app
        .delete(&format!("/api/v1/products/{id}"), Some(&admin))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(search(app, &after).await.body["total"], 0);
    assert_eq!(suggest(app, &after).await.body["items"], json!([]));
    assert_eq!(
        catalog_count(
            app,
            &format!("SELECT COUNT(*) FROM product_search WHERE product_id = '{id}'")
        )
        .await,
        0
    );

    // Created inactive: never indexed.
    let hidden = app.word("hid");
    new_product(
        app,
        &admin,
        &cat,
        json!({"name": format!("{hidden} Thing"), "is_active": false}),
    )
    .await;
    assert_eq!(search(app, &hidden).await.body["total"], 0);
});

backend_test!(
    a_product_written_in_a_rolled_back_call_is_never_found,
    |app| {
        let admin = app.admin_token().await;
        let (cat, _) = app.new_category(&admin).await;
        // The vocabulary refuses one word, so the create fails after the product row and
        // its index row were written: the call answers 500 and rolls back.
        let doomed = "zzdoomedword";
        match app.backend {
            Backend::Sqlite => {
                catalog_sql(
                    app,
                    &format!(
                        "CREATE TRIGGER test_refuse BEFORE INSERT ON search_words \
                     WHEN NEW.word = '{doomed}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                    ),
                )
                .await
            }
            Backend::Postgres => {
                catalog_sql(
                    app,
                    &format!(
                        "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN IF NEW.word = '{doomed}' THEN RAISE EXCEPTION 'refused'; END IF; \
                     RETURN NEW; END $$"
                    ),
                )
                .await;
                catalog_sql(
                    app,
                    "CREATE TRIGGER test_refuse BEFORE INSERT ON search_words \
                 FOR EACH ROW EXECUTE FUNCTION test_refuse()",
                )
                .await;
            }
        }
        let sku = app.unique("SKU");
        let r = app
            .post(
                "/api/v1/products",
                Some(&admin),
                json!({"sku": sku, "name": format!("Doomed {doomed}"), "category_id": cat,
                   "unit": "1 pc", "price": 100, "mrp": 100, "stock": 5}),
            )
            .await;
        assert_eq!(r.status, 500, "{}", r.text);

        // Nothing of it is found: not by search, not by suggest, not in the index.
        assert_eq!(search(app, "doomed").await.body["total"], 0);
        assert_eq!(suggest(app, "doome").await.body["items"], json!([]));
        for table in ["product_search", "products"] {
            let n = catalog_count(
            app,
            &format!("SELECT COUNT(*) FROM {table} WHERE name LIKE '%doomed%' OR name LIKE '%Doomed%'"),
        )
        .await;
            assert_eq!(n, 0, "{table}");
        }
        assert_eq!(
            catalog_count(
                app,
                "SELECT COUNT(*) FROM search_words WHERE word = 'doomed'"
            )
            .await,
            0
        );
        // The SKU was never taken, and a product without the refused word is indexed.
        let id = new_product(app, &admin, &cat, json!({"sku": sku, "name": "Doomed Not"})).await;
        assert_eq!(ids(&search(app, "doomed").await), [id]);
    }
);

// ---------------------------------------------------------------- migration

// A catalog written before search existed (no search tables, a product the index
// never saw) becomes searchable when the catalog's migration runs at the next start.
backend_test!(migration_indexes_an_existing_catalog, |mut app| {
    catalog_sql(app, "DROP TABLE IF EXISTS product_fts").await;
    for table in [
        "product_search",
        "search_words",
        "search_variants",
        "search_meta",
    ] {
        catalog_sql(app, &format!("DROP TABLE {table}")).await;
    }
    catalog_sql(
        app,
        "INSERT INTO products (id, sku, name, description, category_id, brand, unit, price, \
         mrp, stock, is_active, image_url, created_at, updated_at, created_us) \
         SELECT 'prd_legacyone', 'LEGACY-1', 'Zanzibar Cloves', 'Whole cloves from the old shop', \
         id, 'Spice Traders', '50 g', 9900, 9900, 12, TRUE, NULL, \
         '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', 0 \
         FROM categories WHERE slug = 'staples'",
    )
    .await;
    app.restart().await;

    let r = search(app, "zanzibar").await;
    assert_eq!(ids(&r), ["prd_legacyone"], "{}", r.text);
    let r = search(app, "clove").await;
    assert_eq!(ids(&r), ["prd_legacyone"], "plural, prefix: {}", r.text);
    let r = search(app, "zanzibat ").await;
    assert_eq!(ids(&r), ["prd_legacyone"], "typo: {}", r.text);
    let r = suggest(app, "zanz").await;
    assert_eq!(r.body["items"][0]["id"], "prd_legacyone", "{}", r.text);
    // The seeded products are indexed again too.
    let r = search(app, "tomato").await;
    assert_eq!(names(&r)[0], "Tomato", "{}", r.text);
});
