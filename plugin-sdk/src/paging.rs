//! `?page=&page_size=` and the `{items, page, page_size, total}` envelope.

use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::http::Request;

/// Validated paging parameters: page ≥ 1, page_size 1..=100 (default 1 and 20).
/// Out-of-range or non-integer values are `400 validation_failed`, never clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u32,
    pub page_size: u32,
}

impl Paging {
    pub const MAX_PAGE_SIZE: u32 = 100;
    pub const DEFAULT_PAGE_SIZE: u32 = 20;

    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let mut fields = Vec::new();
        let mut read = |name: &str, default: u32, max: u32| -> u32 {
            match req.query(name) {
                None => default,
                Some(raw) => match raw.parse::<u32>() {
                    Ok(n) if (1..=max).contains(&n) => n,
                    _ => {
                        let message = if max == u32::MAX {
                            "must be an integer ≥ 1".to_string()
                        } else {
                            format!("must be an integer from 1 to {max}")
                        };
                        fields.push(FieldError {
                            field: name.to_string(),
                            message,
                        });
                        default
                    }
                },
            }
        };
        let page = read("page", 1, u32::MAX);
        let page_size = read("page_size", Self::DEFAULT_PAGE_SIZE, Self::MAX_PAGE_SIZE);
        if fields.is_empty() {
            Ok(Self { page, page_size })
        } else {
            Err(ApiError::validation(fields))
        }
    }

    /// Rows to skip, for `LIMIT $n OFFSET $m`.
    pub fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.page_size)
    }

    pub fn limit(&self) -> i64 {
        i64::from(self.page_size)
    }
}

/// A page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub page_size: u32,
    pub total: i64,
}

impl<T> Paged<T> {
    pub fn new(items: Vec<T>, paging: Paging, total: i64) -> Self {
        Self {
            items,
            page: paging.page,
            page_size: paging.page_size,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::kirana::platform::types as wit;

    fn req(query: &str) -> Request {
        Request::from_wit(wit::Request {
            method: "GET".into(),
            path: "/x".into(),
            route: "/x".into(),
            params: vec![],
            query: query.into(),
            headers: vec![],
            body: vec![],
            caller: None,
            request_id: "t".into(),
        })
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            Paging::from_request(&req("")).unwrap(),
            Paging {
                page: 1,
                page_size: 20
            }
        );
        let p = Paging::from_request(&req("page=3&page_size=100")).unwrap();
        assert_eq!(p.offset(), 200);
        for bad in [
            "page=0",
            "page_size=0",
            "page_size=101",
            "page=x",
            "page=-1",
        ] {
            let e = Paging::from_request(&req(bad)).unwrap_err();
            assert_eq!(e.code, "validation_failed", "{bad}");
        }
        let e = Paging::from_request(&req("page=0&page_size=500")).unwrap_err();
        assert_eq!(e.details["fields"].as_array().map(|a| a.len()), Some(2));
    }
}
