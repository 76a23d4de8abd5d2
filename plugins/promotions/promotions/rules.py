"""The promotions rules, pure (no host calls) so every case is unit-tested natively:
coupon codes, the discount, why a coupon does not apply, and the redemption's state
machine.

A redemption holds one use of its coupon for a checkout, keyed by the checkout's
catalog stock-hold id. Exactly like the catalog's stock holds::

             order.created / expiry finds the order
    held ─────────────────────────────────────────────▶ confirmed ──┐
     │  \\                                                           │ order.cancelled
     │   \\ order.cancelled                                          ▼ (use back)
     │    └──────────────────────────────────────────────────────▶ returned
     │ release / expiry finds no order (use back)                    ▲
     ▼                                                               │ order.cancelled
    released ────────────────────────────────────────────────────────┘ (use already back)
     │ order.created (the order committed after all: the use is taken again)
     └─────────────────────────────────────────────────────────▶ confirmed

Each step is one conditional ``UPDATE ... WHERE status = <from>`` in the transaction
that moves the use, so it happens at most once whatever races it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

KINDS = ("percent", "flat")
# Money and counts are bounded well inside 64 bits (10^10 paise is ₹10 crore).
MAX_PAISE = 10**10
MAX_COUNT = 10**9
PERCENT_MIN, PERCENT_MAX = 1, 90

_CODE = re.compile(r"[A-Z0-9]{3,20}")
_HOLD_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def normalize_code(raw: str) -> str:
    """Codes are case-insensitive: stored and compared in upper case, spaces around
    them ignored."""
    return raw.strip().upper()


def is_code(code: str) -> bool:
    """3 to 20 ASCII letters or digits (after :func:`normalize_code`)."""
    return code.isascii() and _CODE.fullmatch(code) is not None


def is_hold_id(hold_id: str) -> bool:
    """Hold ids are the catalog's (``hld_…``): letters, digits, ``_`` and ``-``, so one
    can go into a path unescaped."""
    return _HOLD_ID.fullmatch(hold_id) is not None


def discount(kind: str, value: int, max_discount: Optional[int], subtotal: int) -> int:
    """The discount in paise: a percentage of the subtotal rounded down and capped by
    ``max_discount``, or the flat value; never above the subtotal, never negative."""
    if kind == "percent":
        d = subtotal * value // 100
        if max_discount is not None:
            d = min(d, max_discount)
    else:
        d = value
    return max(0, min(d, subtotal))


@dataclass(frozen=True)
class Refusal:
    """Why a coupon does not apply to a cart: ``reason`` goes in the error's details,
    ``message`` is for people."""

    reason: str
    message: str

    @property
    def used_up(self) -> bool:
        return self.reason in ("used_up", "used_up_for_customer")


@dataclass(frozen=True)
class Coupon:
    """What the rules need of a coupon row."""

    kind: str
    value: int
    min_cart_value: int
    max_discount: Optional[int]
    starts_at: Optional[datetime]
    ends_at: Optional[datetime]
    max_uses: Optional[int]
    max_uses_per_customer: Optional[int]
    uses: int


def refusal(c: Coupon, subtotal: int, customer_uses: int, now: datetime) -> Optional[Refusal]:
    """The first reason the coupon does not apply now to this customer's subtotal, or
    ``None`` when it does."""
    if c.starts_at is not None and now < c.starts_at:
        return Refusal("not_started", "this coupon is not valid yet")
    if c.ends_at is not None and now >= c.ends_at:
        return Refusal("expired", "this coupon has expired")
    if subtotal < c.min_cart_value:
        return Refusal(
            "below_min_cart_value",
            f"this coupon needs a cart of at least {c.min_cart_value} paise",
        )
    if c.max_uses is not None and c.uses >= c.max_uses:
        return Refusal("used_up", "this coupon has been used up")
    if c.max_uses_per_customer is not None and customer_uses >= c.max_uses_per_customer:
        return Refusal("used_up_for_customer", "you have already used this coupon as often as it allows")
    return None


# --- the redemption's state machine ---

STATUSES = ("held", "confirmed", "released", "returned")

# Triggers.
ORDER_CREATED = "order_created"
EXPIRED_WITH_ORDER = "expired_with_order"
EXPIRED_WITHOUT_ORDER = "expired_without_order"
ORDER_CANCELLED = "order_cancelled"
RELEASE = "release"
TRIGGERS = (ORDER_CREATED, EXPIRED_WITH_ORDER, EXPIRED_WITHOUT_ORDER, ORDER_CANCELLED, RELEASE)

# What a step does with the coupon's use.
KEEP = "keep"
GIVE_BACK = "give_back"
TAKE_AGAIN = "take_again"


def step(status: str, trigger: str) -> Optional[tuple[str, str]]:
    """``(new status, use movement)`` for ``trigger`` in ``status``, or ``None`` when
    it changes nothing."""
    if status == "held" and trigger in (ORDER_CREATED, EXPIRED_WITH_ORDER):
        return "confirmed", KEEP
    if status == "released" and trigger == ORDER_CREATED:
        return "confirmed", TAKE_AGAIN
    if status == "held" and trigger in (EXPIRED_WITHOUT_ORDER, RELEASE):
        return "released", GIVE_BACK
    if status in ("held", "confirmed") and trigger == ORDER_CANCELLED:
        return "returned", GIVE_BACK
    # An expiry released the use before the order's events came: the order is cancelled,
    # so the use stays back; `returned` keeps a late order.created from taking it again.
    if status == "released" and trigger == ORDER_CANCELLED:
        return "returned", KEEP
    return None
