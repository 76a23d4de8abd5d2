//! Product images: admins upload JPEG, PNG or WebP; the catalog decodes and re-encodes
//! them here, inside its sandbox, into a large (at most 800 px) and a thumbnail (at most
//! 200 px) JPEG, stored through the `files` capability. A malformed file or an image
//! bomb meets this plugin's memory and time limits, never the host; and the pixel
//! count is checked from the header before anything is decoded.
//!
//! The type is sniffed from the bytes, never taken from a name or a header. A product
//! keeps its images in order in its `images` column (JSON), so every read of a product
//! (listing, search, the cache) carries them with no second query. A product with no
//! upload shows a generated illustration (an SVG of its initials on its category's
//! colour), so every product, seeded or not, has an image.
//!
//! Files: `products/{product_id}/{image_id}-large.jpg` and `-thumb.jpg`. They are
//! written before the row that points to them and deleted after it, so a failure leaves
//! at worst an unreferenced file, never a broken link. Deleting an image or a product
//! deletes its files.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, RgbImage};
use kirana_sdk::prelude::*;
use kirana_sdk::{files, sql, CapError};

use crate::{db, listing};

/// Largest upload (the gateway's `body_bytes` for this plugin must allow it).
pub const MAX_UPLOAD: usize = 5 * 1024 * 1024;
/// Most pixels an image may have (checked from its header, before decoding).
pub const MAX_PIXELS: u64 = 16_000_000;
/// Longest side accepted.
pub const MAX_SIDE: u32 = 8000;
/// Most images a product keeps.
pub const MAX_IMAGES: usize = 10;
const LARGE: u32 = 800;
const THUMB: u32 = 200;
const QUALITY: u8 = 82;
/// The id of a product's generated illustration (it has no files).
pub const GENERATED: &str = "generated";

/// An image as the `images` column stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub id: String,
    pub width: u32,
    pub height: u32,
    pub thumb_width: u32,
    pub thumb_height: u32,
    pub created_at: String,
}

/// An image as clients see it in `images`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub id: String,
    pub url: String,
    pub thumbnail_url: String,
    pub width: u32,
    pub height: u32,
    /// True for the illustration of a product with no uploaded image.
    pub generated: bool,
}

/// The `images` column's value; unreadable or absent is none.
pub fn parse(column: Option<&str>) -> Vec<Stored> {
    column
        .and_then(|c| kirana_sdk::serde_json::from_str(c).ok())
        .unwrap_or_default()
}

fn url(product_id: &str, image_id: &str, size: &str) -> String {
    format!("/api/v1/products/{product_id}/images/{image_id}/{size}")
}

/// What clients see: the uploaded images, or the generated one when there are none.
pub fn views(product_id: &str, stored: &[Stored]) -> Vec<View> {
    if stored.is_empty() {
        return vec![View {
            id: GENERATED.into(),
            url: url(product_id, GENERATED, "large"),
            thumbnail_url: url(product_id, GENERATED, "thumb"),
            width: LARGE,
            height: LARGE,
            generated: true,
        }];
    }
    stored
        .iter()
        .map(|s| View {
            id: s.id.clone(),
            url: url(product_id, &s.id, "large"),
            thumbnail_url: url(product_id, &s.id, "thumb"),
            width: s.width,
            height: s.height,
            generated: false,
        })
        .collect()
}

fn path(product_id: &str, image_id: &str, size: &str) -> String {
    format!("products/{product_id}/{image_id}-{size}.jpg")
}

/// The format the bytes say they are in, if it is one we take.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_field("image", message)
}

/// Decodes `bytes` (already sniffed as `format`) with the pixel limits.
pub fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, ApiError> {
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| invalid(format!("the image cannot be read: {e}")))?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS
    {
        return Err(invalid(format!(
            "the image is {w}×{h} pixels; at most {MAX_SIDE} per side and {} megapixels",
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| invalid(format!("the image cannot be decoded: {e}")))
}

/// RGB with any transparency laid on white (JPEG has no alpha).
fn flatten(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

/// Scaled down to fit `max`×`max` (never up), as JPEG bytes with its size.
pub fn jpeg(img: &DynamicImage, max: u32) -> Result<(Vec<u8>, u32, u32), ApiError> {
    let scaled = if img.width() > max || img.height() > max {
        img.thumbnail(max, max)
    } else {
        img.clone()
    };
    let rgb = flatten(&scaled);
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY);
    rgb.write_with_encoder(encoder)
        .map_err(|e| ApiError::internal(format!("encoding a JPEG: {e}")))?;
    Ok((out, rgb.width(), rgb.height()))
}

/// The product's `images` column as stored ("" for none); `None` for no active product.
fn column_of(product_id: &str) -> Result<Option<String>, ApiError> {
    let rows = sql::query(
        "SELECT images FROM products WHERE id = $1 AND is_active",
        &params![product_id],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let column: Option<String> = row.at(0)?;
    Ok(Some(column.unwrap_or_default()))
}

/// How many times a change to a product's images is tried against concurrent ones.
const SAVE_ATTEMPTS: usize = 5;

/// Applies `change` to the product's images and stores the result only if nobody
/// changed them meanwhile (compare and swap on the column), trying again from a fresh
/// read otherwise, so two uploads at once both stay. `change` returns what it did, or
/// an error that ends the attempt. `None` when there is no active product.
fn update<T>(
    product_id: &str,
    mut change: impl FnMut(&mut Vec<Stored>) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    for _ in 0..SAVE_ATTEMPTS {
        let Some(before) = column_of(product_id)? else {
            return Ok(None);
        };
        let mut images = parse(Some(&before));
        let done = change(&mut images)?;
        let text = kirana_sdk::serde_json::to_string(&images)
            .map_err(|e| ApiError::internal(format!("images column: {e}")))?;
        let changed = sql::execute(
            "UPDATE products SET images = $1, updated_at = $2 \
             WHERE id = $3 AND is_active AND COALESCE(images, '') = $4",
            &params![text, now_rfc3339(), product_id, before],
        )?;
        if changed == 1 {
            listing::cache().invalidate();
            return Ok(Some(done));
        }
    }
    Err(ApiError::conflict(
        "the product's images kept changing under this request; try again",
    ))
}

fn files_error(e: CapError) -> ApiError {
    match e {
        CapError::Conflict(m) => ApiError::new(507, "insufficient_storage", m),
        other => other.into(),
    }
}

/// `POST /api/v1/products/{id}/images` (admin), the raw image as the body: 201 product.
pub fn upload(req: &Request) -> Result<Response, ApiError> {
    let product_id: String = req.param("id")?;
    let body = req.body();
    if body.len() > MAX_UPLOAD {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!("an image may be at most {} MB", MAX_UPLOAD / (1024 * 1024)),
        ));
    }
    let full = || {
        ApiError::conflict(format!(
            "a product keeps at most {MAX_IMAGES} images; delete one first"
        ))
    };
    // Checked before the costly decoding, and again when the image is added.
    let Some(count) = column_of(&product_id)?.map(|c| parse(Some(&c)).len()) else {
        return Err(ApiError::not_found("product"));
    };
    if count >= MAX_IMAGES {
        return Err(full());
    }
    let format = sniff(body).ok_or_else(|| {
        ApiError::new(
            415,
            "unsupported_media_type",
            "send a JPEG, PNG or WebP image (the type is read from the bytes)",
        )
    })?;
    let img = decode(body, format)?;
    let (large, width, height) = jpeg(&img, LARGE)?;
    let (thumb, thumb_width, thumb_height) = jpeg(&img, THUMB)?;
    let image_id = new_id("img");
    files::write(&path(&product_id, &image_id, "large"), &large).map_err(files_error)?;
    if let Err(e) = files::write(&path(&product_id, &image_id, "thumb"), &thumb) {
        let _ = files::delete(&path(&product_id, &image_id, "large"));
        return Err(files_error(e));
    }
    let stored = Stored {
        id: image_id.clone(),
        width,
        height,
        thumb_width,
        thumb_height,
        created_at: now_rfc3339(),
    };
    let added = update(&product_id, |images| {
        if images.len() >= MAX_IMAGES {
            return Err(full());
        }
        images.push(stored.clone());
        Ok(())
    });
    if !matches!(added, Ok(Some(()))) {
        // The files were written for an image that is not kept.
        delete_files(&product_id, &image_id);
        added?.ok_or_else(|| ApiError::not_found("product"))?;
    }
    let product = db::any_product(&product_id)?.ok_or_else(|| ApiError::not_found("product"))?;
    Ok(Response::created(&product))
}

/// `DELETE /api/v1/products/{id}/images/{image_id}` (admin): 204; its files go too.
pub fn delete(req: &Request) -> Result<Response, ApiError> {
    let product_id: String = req.param("id")?;
    let image_id: String = req.param("image_id")?;
    update(&product_id, |images| {
        let before = images.len();
        images.retain(|i| i.id != image_id);
        if images.len() == before {
            return Err(ApiError::not_found("image"));
        }
        Ok(())
    })?
    .ok_or_else(|| ApiError::not_found("product"))?;
    delete_files(&product_id, &image_id);
    Ok(Response::no_content())
}

/// Removes an image's files; a failure is logged (the row no longer points to them).
pub fn delete_files(product_id: &str, image_id: &str) {
    for size in ["large", "thumb"] {
        if let Err(e) = files::delete(&path(product_id, image_id, size)) {
            kirana_sdk::log::warn(
                "an image file could not be deleted",
                &[
                    ("product", product_id),
                    ("image", image_id),
                    ("error", &kirana_sdk::cap_error_message(&e)),
                ],
            );
        }
    }
}

/// Drops every image of a product being deleted (row first, then files).
pub fn delete_all(product_id: &str, images: &[Stored]) -> Result<(), ApiError> {
    if images.is_empty() {
        return Ok(());
    }
    sql::execute(
        "UPDATE products SET images = NULL, updated_at = $1 WHERE id = $2",
        &params![now_rfc3339(), product_id],
    )?;
    listing::cache().invalidate();
    for i in images {
        delete_files(product_id, &i.id);
    }
    Ok(())
}

/// `GET /api/v1/products/{id}/images/{image_id}/{size}` (public): the JPEG (or the
/// generated SVG), cached for a year (an image id never changes its bytes), 304 for a
/// matching `If-None-Match`.
pub fn serve(req: &Request) -> Result<Response, ApiError> {
    let product_id: String = req.param("id")?;
    let image_id: String = req.param("image_id")?;
    let size: String = req.param("size")?;
    if size != "large" && size != "thumb" {
        return Err(ApiError::not_found("image size"));
    }
    let etag = format!("\"{image_id}-{size}\"");
    let cached = |resp: Response| {
        resp.with_header("etag", &etag)
            .with_header("cache-control", "public, max-age=31536000, immutable")
            .with_header("x-content-type-options", "nosniff")
    };
    let not_modified = req
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if image_id == GENERATED {
        let product =
            db::active_product(&product_id)?.ok_or_else(|| ApiError::not_found("product"))?;
        if !parse(product.images_column.as_deref()).is_empty() {
            return Err(ApiError::not_found("image"));
        }
        // The illustration changes with the product's name: tag it by that too.
        let etag_generated = format!("\"{GENERATED}-{}\"", short_hash(&product.name));
        if req
            .header("if-none-match")
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag_generated))
        {
            return Ok(Response {
                status: 304,
                headers: vec![("etag".into(), etag_generated)],
                body: Vec::new(),
            });
        }
        let svg = placeholder(&product.name, &product.category_id);
        return Ok(Response {
            status: 200,
            headers: vec![
                ("content-type".into(), "image/svg+xml".into()),
                ("etag".into(), etag_generated),
                ("cache-control".into(), "public, max-age=3600".into()),
                // An SVG is a document: this one may run nothing and load nothing.
                (
                    "content-security-policy".into(),
                    "default-src 'none'; style-src 'unsafe-inline'".into(),
                ),
                ("x-content-type-options".into(), "nosniff".into()),
            ],
            body: svg.into_bytes(),
        });
    }
    let Some(column) = column_of(&product_id)? else {
        return Err(ApiError::not_found("product"));
    };
    if !parse(Some(&column)).iter().any(|i| i.id == image_id) {
        return Err(ApiError::not_found("image"));
    }
    if not_modified {
        return Ok(cached(Response {
            status: 304,
            headers: Vec::new(),
            body: Vec::new(),
        }));
    }
    let bytes = files::read(&path(&product_id, &image_id, &size))?
        .ok_or_else(|| ApiError::not_found("image"))?;
    Ok(cached(Response {
        status: 200,
        headers: vec![("content-type".into(), "image/jpeg".into())],
        body: bytes,
    }))
}

fn short_hash(text: &str) -> String {
    // FNV-1a: a stable tag, not a security boundary.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c if c.is_control() => String::new(),
            c => c.to_string(),
        })
        .collect()
}

/// A product's illustration: its initials, large, on a soft colour of its category,
/// and its name below. Everything in it is escaped text.
pub fn placeholder(name: &str, category_id: &str) -> String {
    let hue = u64::from_str_radix(&short_hash(category_id)[..4], 16).unwrap_or(0) % 360;
    let initials: String = name
        .split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .collect::<String>()
        .to_uppercase();
    let label: String = name.chars().take(28).collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 800 800\" width=\"800\" height=\"800\" role=\"img\" aria-label=\"{name}\">\
<rect width=\"800\" height=\"800\" fill=\"hsl({hue},55%,88%)\"/>\
<circle cx=\"400\" cy=\"350\" r=\"210\" fill=\"hsl({hue},45%,72%)\"/>\
<text x=\"400\" y=\"350\" font-family=\"sans-serif\" font-size=\"170\" font-weight=\"700\" fill=\"hsl({hue},40%,25%)\" text-anchor=\"middle\" dominant-baseline=\"central\">{initials}</text>\
<text x=\"400\" y=\"690\" font-family=\"sans-serif\" font-size=\"44\" fill=\"hsl({hue},35%,22%)\" text-anchor=\"middle\">{label}</text></svg>",
        name = escape(name),
        initials = escape(&initials),
        label = escape(&label),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::WebP));
        for other in [&b"GIF89a"[..], b"<svg", b"", b"RIFF\0\0\0\0WAVE"] {
            assert_eq!(sniff(other), None);
        }
    }

    #[test]
    fn images_are_scaled_down_flattened_and_never_up() {
        let big = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            1600,
            900,
            image::Rgba([0, 0, 0, 0]),
        ));
        let (bytes, w, h) = jpeg(&big, LARGE).unwrap();
        assert_eq!((w, h), (800, 450));
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        // Transparent black lies on white.
        assert!(back.get_pixel(10, 10).0.iter().all(|&c| c > 240));
        let small = DynamicImage::ImageRgb8(RgbImage::new(120, 80));
        assert_eq!(jpeg(&small, THUMB).unwrap().1, 120);
    }

    #[test]
    fn a_bomb_is_refused_from_its_header() {
        let mut png = Vec::new();
        // 10000×10000 in the header; the data never needs decoding to refuse it.
        DynamicImage::ImageLuma8(image::GrayImage::new(10_000, 1))
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert!(decode(&png, ImageFormat::Png).is_err());
        assert!(decode(b"\xFF\xD8\xFFgarbage", ImageFormat::Jpeg).is_err());
    }

    #[test]
    fn the_illustration_is_escaped_text() {
        let svg = placeholder("<script>alert(1)</script> Atta", "cat_1");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert_eq!(
            placeholder("Amul Taaza", "c"),
            placeholder("Amul Taaza", "c")
        );
    }
}
