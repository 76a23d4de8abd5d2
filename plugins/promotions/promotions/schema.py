"""The promotions database. Idempotent: it runs every time a version goes live."""

from kirana_sdk import sql

STATEMENTS = [
    # `uses` counts the redemptions holding a use (held or confirmed): a checkout's
    # redemption takes one, a release or cancellation gives it back.
    """CREATE TABLE IF NOT EXISTS coupons (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        kind TEXT NOT NULL,
        value BIGINT NOT NULL,
        min_cart_value BIGINT NOT NULL,
        max_discount BIGINT,
        starts_at TEXT,
        ends_at TEXT,
        max_uses BIGINT,
        max_uses_per_customer BIGINT,
        uses BIGINT NOT NULL,
        is_active BOOLEAN NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS coupons_code ON coupons (code)",
    "CREATE INDEX IF NOT EXISTS coupons_created ON coupons (created_at, id)",
    # One customer's uses of one coupon, for max_uses_per_customer.
    """CREATE TABLE IF NOT EXISTS coupon_customer_uses (
        coupon_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        uses BIGINT NOT NULL,
        PRIMARY KEY (coupon_id, user_id)
    )""",
    # One checkout's use of a coupon, keyed by the checkout's catalog stock-hold id.
    # `holds_use` is true while the redemption counts in the coupon's `uses`.
    """CREATE TABLE IF NOT EXISTS redemptions (
        hold_id TEXT PRIMARY KEY,
        coupon_id TEXT NOT NULL,
        code TEXT NOT NULL,
        user_id TEXT NOT NULL,
        subtotal BIGINT NOT NULL,
        discount BIGINT NOT NULL,
        status TEXT NOT NULL,
        holds_use BOOLEAN NOT NULL,
        order_id TEXT,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS redemptions_coupon ON redemptions (coupon_id)",
]


def migrate() -> None:
    sql.execute_batch(STATEMENTS)
