//! Coupon quotes from the `promotions` plugin. The cart stores only a coupon's code; what
//! it is worth is asked of promotions each time a cart with a coupon is answered (never
//! for a cart without one), since it depends on the subtotal, the clock and the
//! coupon's uses.

use kirana_sdk::prelude::*;

/// Promotions' answer to a quote: the code as promotions spells it and what it takes
/// off this subtotal.
pub use kirana_shop::promotions::Quote as Quoted;

/// Why there is no quote.
#[derive(Debug)]
pub enum NoQuote {
    /// Promotions refused the code for this cart (`404` unknown or inactive, `400`
    /// expired, not started, below its minimum, used up for this customer): its error.
    Refused(ApiError),
    /// Promotions could not answer (disabled, not installed, failing, too slow): the
    /// error to pass on (`503 plugin_unavailable`, `504 plugin_timeout`, ...).
    Unavailable(ApiError),
}

impl NoQuote {
    /// The error as a route answers it.
    pub fn into_error(self) -> ApiError {
        match self {
            NoQuote::Refused(e) | NoQuote::Unavailable(e) => e,
        }
    }
}

/// `POST promotions /internal/promotions/quote {code, user_id, subtotal}`.
pub fn quote(code: &str, user_id: &str, subtotal: i64) -> Result<Quoted, NoQuote> {
    match kirana_shop::promotions::quote(code, user_id, subtotal) {
        Ok(q) => Ok(q),
        Err(e) if matches!(e.status, 400 | 404) => Err(NoQuote::Refused(e)),
        Err(e) => {
            if e.status != 503 && e.status != 504 {
                kirana_sdk::log::warn(&format!("promotions answered a quote with {e}"), &[]);
            }
            Err(NoQuote::Unavailable(e))
        }
    }
}
