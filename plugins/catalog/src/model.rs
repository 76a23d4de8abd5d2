//! The catalog's resources as clients see them, and the pure rules behind their
//! derived fields (discount, slug).

use kirana_sdk::prelude::*;
use kirana_sdk::CapError;

/// The columns [`Product::from_row`] reads; every query that returns products selects
/// exactly these (from `products p`).
pub const PRODUCT_COLUMNS: &str = "p.id, p.sku, p.name, p.description, p.category_id, \
    p.brand, p.unit, p.price, p.mrp, p.stock, \
    p.is_active, p.image_url, p.created_at, \
    p.updated_at, p.images";

/// Upper bound of `price` and `mrp` in paise (₹1 crore): keeps arithmetic far from
/// overflow and catches unit mistakes (rupees sent as paise twice over).
pub const MAX_MONEY: i64 = 1_000_000_000;

/// Upper bound of `stock` and of a single stock change.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// Microseconds since the epoch: the `created_us` column that orders `sort=newest`
/// (the RFC 3339 `created_at` has whole seconds, too coarse for products created in a
/// burst).
pub fn now_micros() -> i64 {
    i64::try_from(kirana_sdk::now().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// A product as every route (public and internal) renders it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub category_id: String,
    pub brand: Option<String>,
    pub unit: String,
    pub price: i64,
    pub mrp: i64,
    pub discount_percent: i64,
    pub stock: i64,
    pub is_active: bool,
    /// The first large image (uploaded, else an admin-given URL, else the generated
    /// illustration), kept for older clients.
    pub image_url: Option<String>,
    /// Uploaded images in order, or the generated illustration (see `images`).
    pub images: Vec<crate::images::View>,
    pub created_at: String,
    pub updated_at: String,
    /// The stored `images` column, for the image routes.
    #[serde(skip)]
    pub images_column: Option<String>,
}

/// By hand: `discount_percent` is computed from `price` and `mrp`, not stored.
impl FromRow for Product {
    fn from_row(r: &Row<'_>) -> Result<Self, CapError> {
        let price: i64 = r.get("price")?;
        let mrp: i64 = r.get("mrp")?;
        let id: String = r.get("id")?;
        let images_column: Option<String> = r.get("images")?;
        let stored = crate::images::parse(images_column.as_deref());
        let images = crate::images::views(&id, &stored);
        let given: Option<String> = r.get("image_url")?;
        let image_url = match (stored.is_empty(), given) {
            (true, Some(url)) => Some(url),
            _ => images.first().map(|i| i.url.clone()),
        };
        Ok(Product {
            id,
            sku: r.get("sku")?,
            name: r.get("name")?,
            description: r.get("description")?,
            category_id: r.get("category_id")?,
            brand: r.get("brand")?,
            unit: r.get("unit")?,
            price,
            mrp,
            discount_percent: discount_percent(price, mrp),
            stock: r.get("stock")?,
            is_active: r.get("is_active")?,
            image_url,
            images,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            images_column,
        })
    }
}

/// A category with the number of its active products.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub product_count: i64,
}

/// `round(100 · (mrp − price) / mrp)`, halves rounded up, as an integer percentage.
/// Computed in i128 so no stored value can overflow; 0 when `mrp` is not positive or
/// the price is above it (neither can be stored, but the function stays total).
pub fn discount_percent(price: i64, mrp: i64) -> i64 {
    if mrp <= 0 || price >= mrp {
        return 0;
    }
    let off = i128::from(mrp) - i128::from(price);
    let mrp = i128::from(mrp);
    // round(a / b) for non-negative a, b > 0 is floor((2a + b) / 2b).
    ((200 * off + mrp) / (2 * mrp)) as i64
}

/// Longest slug accepted or derived.
pub const MAX_SLUG: usize = 100;

/// A URL slug from a category name: lower-case ASCII letters and digits, every other
/// run of characters becomes one `-`, apostrophes vanish (`Haldiram's` → `haldirams`),
/// no leading/trailing dash. Letters outside ASCII are dropped (no transliteration), so
/// the result may be empty; callers then ask for an explicit slug.
pub fn derive_slug(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for ch in name.chars() {
        if matches!(ch, '\'' | '\u{2019}' | '`') {
            continue;
        }
        if ch.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(ch.to_ascii_lowercase());
        } else {
            dash = true;
        }
    }
    if out.len() > MAX_SLUG {
        out.truncate(MAX_SLUG);
        while out.ends_with('-') {
            out.pop();
        }
    }
    out
}

/// `^[a-z0-9]+(-[a-z0-9]+)*$`, at most [`MAX_SLUG`] characters.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG
        && slug.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discount_rounds_half_up() {
        assert_eq!(discount_percent(2700, 2800), 4); // 3.57
        assert_eq!(discount_percent(995, 1000), 1); // 0.5
        assert_eq!(discount_percent(996, 1000), 0); // 0.4
        assert_eq!(discount_percent(1, 3), 67); // 66.67
        assert_eq!(discount_percent(2, 3), 33); // 33.33
        assert_eq!(discount_percent(1, 2), 50);
        assert_eq!(discount_percent(1000, 1000), 0);
        assert_eq!(discount_percent(1, MAX_MONEY), 100); // 99.9999999
        assert_eq!(discount_percent(1, i64::MAX), 100);
        assert_eq!(discount_percent(5, 0), 0);
    }

    #[test]
    fn slugs_are_derived() {
        assert_eq!(derive_slug("Fruits & Vegetables"), "fruits-vegetables");
        assert_eq!(derive_slug("Dairy & Bread"), "dairy-bread");
        assert_eq!(derive_slug("  Personal Care  "), "personal-care");
        assert_eq!(derive_slug("Haldiram's Specials"), "haldirams-specials");
        assert_eq!(derive_slug("Snacks--2024!!"), "snacks-2024");
        assert_eq!(derive_slug("Café Crème"), "caf-cr-me");
        assert_eq!(derive_slug("दही"), "");
        assert_eq!(derive_slug("&&&"), "");
        let long = "ab ".repeat(80);
        let s = derive_slug(&long);
        assert!(s.len() <= MAX_SLUG && is_valid_slug(&s), "{s}");
    }

    #[test]
    fn slugs_are_validated() {
        for good in ["snacks", "fruits-vegetables", "a1-b2-c3", "9"] {
            assert!(is_valid_slug(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a b",
            "a_b",
            "café",
            "a/b",
            &"a".repeat(101),
        ] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
        for name in ["Fruits & Vegetables", "X", "Beverages 2"] {
            assert!(is_valid_slug(&derive_slug(name)));
        }
    }
}
