"""The shop's own API error codes (docs/api.md, "Errors"), as ``ApiError`` values."""

from kirana_sdk import ApiError

INSUFFICIENT_STOCK = "insufficient_stock"
INVALID_TRANSITION = "invalid_transition"
CART_EMPTY = "cart_empty"


def insufficient_stock(message: str) -> ApiError:
    """409: not enough stock (``details.items`` lists the short product ids)."""
    return ApiError(409, INSUFFICIENT_STOCK, message)


def invalid_transition(message: str) -> ApiError:
    """409: a state-machine step that is not allowed."""
    return ApiError(409, INVALID_TRANSITION, message)


def cart_empty() -> ApiError:
    """400: checkout or a coupon on an empty cart."""
    return ApiError(400, CART_EMPTY, "the cart is empty")
