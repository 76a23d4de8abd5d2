//! The shop's own error codes. The SDK's [`ApiError`] constructors cover the codes
//! every plugin shares (`validation_failed`, `not_found`, `conflict`, ...); these are
//! the grocery ones, in the same `{"error": {"code", "message", "details"}}` shape.

use kirana_sdk::ApiError;

/// `409`: a line wants more units than the shelf has (or its product is gone).
pub const INSUFFICIENT_STOCK: &str = "insufficient_stock";
/// `409`: an order or a delivery cannot move from its status to the one asked.
pub const INVALID_TRANSITION: &str = "invalid_transition";
/// `400`: a checkout of a cart with no lines.
pub const CART_EMPTY: &str = "cart_empty";

/// `409 insufficient_stock`; the caller adds `details.items` (the short product ids).
pub fn insufficient_stock(message: impl Into<String>) -> ApiError {
    ApiError::new(409, INSUFFICIENT_STOCK, message)
}

/// `409 invalid_transition`.
pub fn invalid_transition(message: impl Into<String>) -> ApiError {
    ApiError::new(409, INVALID_TRANSITION, message)
}

/// `400 cart_empty`.
pub fn cart_empty() -> ApiError {
    ApiError::new(400, CART_EMPTY, "the cart is empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let e = insufficient_stock("2 short");
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (409, "insufficient_stock", "2 short")
        );
        assert_eq!(
            (
                invalid_transition("no").status,
                invalid_transition("no").code
            ),
            (409, "invalid_transition")
        );
        assert_eq!(
            (cart_empty().status, cart_empty().code),
            (400, "cart_empty")
        );
    }
}
