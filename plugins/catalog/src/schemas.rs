//! JSON Schemas of the routes' bodies, for the host's OpenAPI document.

use kirana_sdk::json;
use kirana_sdk::serde_json::Value;

fn money() -> Value {
    json!({"type": "integer", "minimum": 1, "description": "paise"})
}

fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

pub fn product() -> Value {
    json!({
        "type": "object",
        "required": ["id", "sku", "name", "description", "category_id", "brand", "unit",
                     "price", "mrp", "discount_percent", "stock", "is_active", "image_url", "images",
                     "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string"},
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "description": nullable_string(),
            "category_id": {"type": "string"},
            "brand": nullable_string(),
            "unit": {"type": "string", "examples": ["500 ml", "1 kg"]},
            "price": money(),
            "mrp": money(),
            "discount_percent": {"type": "integer", "minimum": 0, "maximum": 100,
                                 "description": "round(100·(mrp−price)/mrp)"},
            "stock": {"type": "integer", "minimum": 0},
            "is_active": {"type": "boolean"},
            "image_url": nullable_string(),
            "images": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "url", "thumbnail_url", "width", "height", "generated"],
                "properties": {
                    "id": {"type": "string"}, "url": {"type": "string"},
                    "thumbnail_url": {"type": "string"},
                    "width": {"type": "integer"}, "height": {"type": "integer"},
                    "generated": {"type": "boolean"}
                }
            }},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"}
        }
    })
}

pub fn product_input() -> Value {
    json!({
        "type": "object",
        "required": ["sku", "name", "category_id", "unit", "price", "mrp", "stock"],
        "properties": {
            "sku": {"type": "string", "minLength": 1, "maxLength": 64},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": {"type": ["string", "null"], "maxLength": 5000},
            "category_id": {"type": "string"},
            "brand": {"type": ["string", "null"], "maxLength": 100},
            "unit": {"type": "string", "minLength": 1, "maxLength": 32},
            "price": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000i64},
            "mrp": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000i64,
                    "description": "≥ price"},
            "stock": {"type": "integer", "minimum": 0},
            "image_url": {"type": ["string", "null"], "format": "uri"},
            "is_active": {"type": "boolean", "default": true}
        }
    })
}

pub fn paged_products() -> Value {
    json!({
        "type": "object",
        "required": ["items", "page", "page_size", "total"],
        "properties": {
            "items": {"type": "array", "items": product()},
            "page": {"type": "integer"},
            "page_size": {"type": "integer"},
            "total": {"type": "integer"},
            "facets": {
                "type": "object",
                "description": "with q only: matches per category and per brand",
                "properties": {
                    "category": {"type": "array", "items": {
                        "type": "object",
                        "required": ["slug", "name", "count"],
                        "properties": {
                            "slug": {"type": "string"},
                            "name": {"type": "string"},
                            "count": {"type": "integer"}
                        }
                    }},
                    "brand": {"type": "array", "items": {
                        "type": "object",
                        "required": ["name", "count"],
                        "properties": {
                            "name": {"type": "string"},
                            "count": {"type": "integer"}
                        }
                    }}
                }
            }
        }
    })
}

/// `GET /api/v1/products/suggest`.
pub fn suggestions() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "maxItems": 8, "items": {
            "type": "object",
            "required": ["id", "name", "brand", "unit", "price"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "brand": {"type": ["string", "null"]},
                "unit": {"type": "string"},
                "price": {"type": "integer", "description": "paise"}
            }
        }}}
    })
}

pub fn category() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "slug", "product_count"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "slug": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"},
            "product_count": {"type": "integer", "description": "active products"}
        }
    })
}

pub fn categories() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": category()}}
    })
}

pub fn category_input() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "slug": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$",
                     "description": "derived from the name when absent"}
        }
    })
}

pub fn stock_change() -> Value {
    json!({
        "type": "object",
        "description": "exactly one of delta or set",
        "properties": {
            "delta": {"type": "integer"},
            "set": {"type": "integer", "minimum": 0}
        }
    })
}

pub fn lookup_input() -> Value {
    json!({
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": {"type": "string"}, "maxItems": 100}}
    })
}

pub fn lookup_output() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": product()}}
    })
}

pub fn lines_input() -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {
            "type": "array", "minItems": 1, "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["product_id", "quantity"],
                "properties": {
                    "product_id": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1}
                }
            }
        }}
    })
}

pub fn hold_output() -> Value {
    json!({
        "type": "object",
        "required": ["hold_id", "expires_at", "items"],
        "properties": {
            "hold_id": {"type": "string"},
            "expires_at": {"type": "string", "format": "date-time"},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["product_id", "name", "unit", "unit_price", "quantity"],
                "properties": {
                    "product_id": {"type": "string"},
                    "name": {"type": "string"},
                    "unit": {"type": "string"},
                    "unit_price": money(),
                    "quantity": {"type": "integer", "minimum": 1}
                }
            }}
        }
    })
}

fn hold_statuses() -> Value {
    json!({"type": "string", "enum": ["held", "confirmed", "released", "returned"]})
}

pub fn hold_status() -> Value {
    json!({
        "type": "object",
        "required": ["hold_id", "status"],
        "properties": {"hold_id": {"type": "string"}, "status": hold_statuses()}
    })
}

pub fn paged_holds() -> Value {
    let hold = json!({
        "type": "object",
        "required": ["id", "status", "order_id", "expires_at", "created_at", "updated_at", "items"],
        "properties": {
            "id": {"type": "string"},
            "status": hold_statuses(),
            "order_id": nullable_string(),
            "expires_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["product_id", "quantity"],
                "properties": {
                    "product_id": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 0}
                }
            }}
        }
    });
    json!({
        "type": "object",
        "required": ["items", "page", "page_size", "total"],
        "properties": {
            "items": {"type": "array", "items": hold},
            "page": {"type": "integer"},
            "page_size": {"type": "integer"},
            "total": {"type": "integer"}
        }
    })
}
