"""Quotes and redemptions for the cart and checkout (internal routes), and the events
that end a redemption: ``order.created`` confirms it, ``order.cancelled`` gives its use
back, and its scheduled expiry releases it when no order came. Mirrors the catalog's
stock holds; the state machine is :mod:`promotions.rules`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Optional

from kirana_sdk import (
    Access,
    ApiError,
    Event,
    Request,
    Response,
    Validator,
    config,
    events,
    log,
    now,
    now_rfc3339,
    rfc3339,
    services,
    sql,
)

from . import rules
from .api import router
from .coupons import COLUMNS, as_rules

# The self-event that ends a redemption nobody confirmed.
EXPIRED = "promotions.redemption_expired"
# Seconds a held redemption lives before its expiry asks orders about it (the catalog's
# stock holds live as long by default).
DEFAULT_HOLD_SECS = 600

# The topics subscribed to and the plugin that owns each.
SUBSCRIPTIONS = (("order.created", "orders"), ("order.cancelled", "orders"), (EXPIRED, "promotions"))

REDEMPTION_COLUMNS = (
    "hold_id, coupon_id, code, user_id, subtotal, discount, status, holds_use, order_id, "
    "expires_at, created_at, updated_at"
)

QUOTE_SCHEMA = {
    "type": "object",
    "required": ["code", "user_id", "subtotal"],
    "properties": {
        "code": {"type": "string"},
        "user_id": {"type": "string"},
        "subtotal": {"type": "integer", "minimum": 0},
    },
}
REDEEM_SCHEMA = {
    "type": "object",
    "required": ["code", "user_id", "subtotal", "hold_id"],
    "properties": {**QUOTE_SCHEMA["properties"], "hold_id": {"type": "string"}},
}


def hold_secs() -> int:
    """``[promotions] hold_secs``, at least one second."""
    return max(1, config.get_or("hold_secs", DEFAULT_HOLD_SECS))


def read_body(req: Request, with_hold: bool) -> tuple[str, str, int, Optional[str]]:
    body = req.json()
    v = Validator()
    code = v.string(body, "code", max_len=64)
    user_id = v.string(body, "user_id", min_len=1, max_len=128)
    subtotal = v.integer(body, "subtotal", minimum=0, maximum=rules.MAX_PAISE)
    hold_id = None
    if with_hold:
        hold_id = v.string(body, "hold_id", min_len=1, max_len=128)
        if hold_id is not None and not rules.is_hold_id(hold_id):
            v.push("hold_id", "must be 1 to 128 letters, digits, _ or -")
    v.finish()
    assert code is not None and user_id is not None and subtotal is not None
    return rules.normalize_code(code), user_id, subtotal, hold_id


def find_coupon(code: str) -> sql.Row:
    """The active coupon with this (normalised) code, or ``404``."""
    row = None
    if rules.is_code(code):
        row = sql.query_one(f"SELECT {COLUMNS} FROM coupons WHERE code = $1", code)
    if row is None or not row.bool("is_active"):
        raise ApiError.not_found("coupon")
    return row


def customer_uses(coupon_id: str, user_id: str) -> int:
    n = sql.query_one(
        "SELECT uses FROM coupon_customer_uses WHERE coupon_id = $1 AND user_id = $2", coupon_id, user_id
    )
    return 0 if n is None else n.int("uses")


def refused(r: rules.Refusal) -> ApiError:
    return ApiError.invalid_field("code", r.message).with_details(
        {"fields": [{"field": "code", "message": r.message}], "reason": r.reason}
    )


def priced(coupon: sql.Row, user_id: str, subtotal: int) -> tuple[Optional[rules.Refusal], int]:
    c = as_rules(coupon)
    refusal = rules.refusal(c, subtotal, customer_uses(coupon["id"], user_id), now())
    return refusal, rules.discount(c.kind, c.value, c.max_discount, subtotal)


@router.post(
    "/internal/promotions/quote",
    Access.INTERNAL,
    summary="The discount a coupon gives a customer's subtotal now (for the cart)",
    request_schema=QUOTE_SCHEMA,
)
def quote(req: Request) -> Response:
    code, user_id, subtotal, _ = read_body(req, with_hold=False)
    coupon = find_coupon(code)
    refusal, discount = priced(coupon, user_id, subtotal)
    if refusal is not None:
        raise refused(refusal)
    return Response.ok({"coupon_id": coupon["id"], "code": coupon["code"], "discount": discount})


def load_redemption(hold_id: str, tx: Optional[sql.Transaction] = None) -> Optional[sql.Row]:
    q = tx.query_one if tx is not None else sql.query_one
    return q(f"SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE hold_id = $1", hold_id)


def redemption_view(row: sql.Row) -> dict[str, Any]:
    return {
        "hold_id": row["hold_id"],
        "coupon_id": row["coupon_id"],
        "code": row["code"],
        "user_id": row["user_id"],
        "subtotal": row.int("subtotal"),
        "discount": row.int("discount"),
        "status": row["status"],
        "order_id": row["order_id"],
        "expires_at": row["expires_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def replay(existing: sql.Row, code: str, user_id: str) -> Response:
    """The same hold redeemed again: the same answer while the redemption holds its use;
    ``409`` when it was for another code or customer, or was given back already."""
    if existing["code"] != code or existing["user_id"] != user_id:
        raise ApiError.conflict("this hold already redeemed another coupon or customer").with_details(
            {"hold_id": existing["hold_id"]}
        )
    if existing["status"] not in ("held", "confirmed"):
        raise ApiError.conflict(f"this hold's redemption is {existing['status']}").with_details(
            {"hold_id": existing["hold_id"], "status": existing["status"]}
        )
    return Response.created(redemption_view(existing))


@router.post(
    "/internal/promotions/redemptions",
    Access.INTERNAL,
    summary="Redeems a coupon under a checkout's stock hold, atomically (idempotent per hold_id)",
    request_schema=REDEEM_SCHEMA,
)
def redeem(req: Request) -> Response:
    code, user_id, subtotal, hold_id = read_body(req, with_hold=True)
    assert hold_id is not None
    existing = load_redemption(hold_id)
    if existing is not None:
        return replay(existing, code, user_id)
    coupon = find_coupon(code)
    refusal, discount = priced(coupon, user_id, subtotal)
    if refusal is not None:
        if refusal.used_up:
            raise ApiError.conflict(refusal.message).with_details({"reason": refusal.reason})
        raise refused(refusal)

    at = now()
    stamp = rfc3339(at)
    ttl = hold_secs()
    with sql.transaction() as tx:
        inserted = tx.execute(
            "INSERT INTO redemptions (hold_id, coupon_id, code, user_id, subtotal, discount, status, "
            "holds_use, order_id, expires_at, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11) ON CONFLICT (hold_id) DO NOTHING",
            hold_id,
            coupon["id"],
            coupon["code"],
            user_id,
            subtotal,
            discount,
            "held",
            True,
            rfc3339(at + timedelta(seconds=ttl)),
            stamp,
            stamp,
        )
        if inserted == 0:
            # The same hold redeemed by a concurrent call that committed first.
            tx.rollback()
            existing = load_redemption(hold_id)
            if existing is None:
                raise ApiError.conflict("a concurrent redemption of this hold did not finish")
            return replay(existing, code, user_id)
        # The limits are checked by the updates themselves, so concurrent checkouts can
        # never take more than max_uses (or max_uses_per_customer) between them.
        took = tx.execute(
            "UPDATE coupons SET uses = uses + 1, updated_at = $2 "
            "WHERE id = $1 AND is_active AND (max_uses IS NULL OR uses < max_uses)",
            coupon["id"],
            stamp,
        )
        if took == 0:
            tx.rollback()
            raise ApiError.conflict("this coupon has been used up meanwhile").with_details({"reason": "used_up"})
        per_customer = tx.execute(
            "INSERT INTO coupon_customer_uses (coupon_id, user_id, uses) VALUES ($1, $2, 1) "
            "ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = coupon_customer_uses.uses + 1 "
            # The comparison first: PostgreSQL types $3 from it (a NULL alone is untyped).
            "WHERE coupon_customer_uses.uses < $3 OR $3 IS NULL",
            coupon["id"],
            user_id,
            coupon.int("max_uses_per_customer"),
        )
        if per_customer == 0:
            tx.rollback()
            raise ApiError.conflict("this customer has used this coupon as often as it allows").with_details(
                {"reason": "used_up_for_customer"}
            )
        # In the same transaction: the expiry exists whenever the redemption does.
        events.schedule(EXPIRED, {"hold_id": hold_id}, ttl)
        row = load_redemption(hold_id, tx)
    assert row is not None
    return Response.created(redemption_view(row))


@router.get(
    "/internal/promotions/redemptions/{hold_id}",
    Access.INTERNAL,
    summary="A checkout's redemption and its status",
)
def get_redemption(req: Request) -> Response:
    row = load_redemption(req.param("hold_id"))
    if row is None:
        raise ApiError.not_found("redemption")
    return Response.ok(redemption_view(row))


@router.post(
    "/internal/promotions/redemptions/{hold_id}/release",
    Access.INTERNAL,
    summary="Gives a failed checkout's coupon use back (once; idempotent)",
)
def release(req: Request) -> Response:
    hold_id = req.param("hold_id")
    status = apply(hold_id, rules.RELEASE)
    if status is None:
        raise ApiError.not_found("redemption")
    return Response.ok({"hold_id": hold_id, "status": status})


def _give_back(tx: sql.Transaction, row: sql.Row, stamp: str) -> None:
    tx.execute(
        "UPDATE coupons SET uses = uses - 1, updated_at = $2 WHERE id = $1 AND uses > 0",
        row["coupon_id"],
        stamp,
    )
    tx.execute(
        "UPDATE coupon_customer_uses SET uses = uses - 1 WHERE coupon_id = $1 AND user_id = $2 AND uses > 0",
        row["coupon_id"],
        row["user_id"],
    )


def _take_again(tx: sql.Transaction, row: sql.Row, order_id: Optional[str], stamp: str) -> bool:
    """The order of a released redemption committed after all: its use is counted
    again if the coupon still has one; otherwise the shop gave one discount more than
    max_uses (logged) and the redemption holds no use, so a cancellation gives none back."""
    took = tx.execute(
        "UPDATE coupons SET uses = uses + 1, updated_at = $2 WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses)",
        row["coupon_id"],
        stamp,
    )
    if took == 1:
        tx.execute(
            "INSERT INTO coupon_customer_uses (coupon_id, user_id, uses) VALUES ($1, $2, 1) "
            "ON CONFLICT (coupon_id, user_id) DO UPDATE SET uses = coupon_customer_uses.uses + 1",
            row["coupon_id"],
            row["user_id"],
        )
    log.error(
        f"redemption {row['hold_id']} was released by its expiry but order {order_id or '?'} exists: "
        + ("its use is counted again" if took == 1 else "the coupon had no use left; the order keeps its discount"),
        hold_id=row["hold_id"],
        coupon_id=row["coupon_id"],
    )
    return took == 1


def apply(hold_id: str, trigger: str, order_id: Optional[str] = None) -> Optional[str]:
    """Applies ``trigger`` to the redemption of ``hold_id``: the status change and the
    use's movement commit together, and only if the redemption is still where it was
    read (a conditional update), so a step happens at most once however many
    deliveries race. The status afterwards; ``None`` for an unknown hold."""
    for _ in range(3):
        with sql.transaction() as tx:
            row = load_redemption(hold_id, tx)
            if row is None:
                tx.rollback()
                return None
            planned = rules.step(row["status"], trigger)
            if planned is None:
                tx.rollback()
                return row["status"]
            to, movement = planned
            stamp = now_rfc3339()
            holds_use = bool(row.bool("holds_use"))
            if movement == rules.GIVE_BACK and holds_use:
                _give_back(tx, row, stamp)
                holds_use = False
            elif movement == rules.TAKE_AGAIN and not holds_use:
                holds_use = _take_again(tx, row, order_id, stamp)
            if order_id is not None:
                changed = tx.execute(
                    "UPDATE redemptions SET status = $1, holds_use = $2, order_id = $3, updated_at = $4 "
                    "WHERE hold_id = $5 AND status = $6",
                    to,
                    holds_use,
                    order_id,
                    stamp,
                    hold_id,
                    row["status"],
                )
            else:
                changed = tx.execute(
                    "UPDATE redemptions SET status = $1, holds_use = $2, updated_at = $3 "
                    "WHERE hold_id = $4 AND status = $5",
                    to,
                    holds_use,
                    stamp,
                    hold_id,
                    row["status"],
                )
            if changed != 1:
                # Only PostgreSQL can see the row move between the read and the update.
                tx.rollback()
                continue
            return to
    raise ApiError.internal(f"redemption {hold_id} kept changing while {trigger} was applied")


def expire(hold_id: str) -> None:
    """A redemption still ``held`` at its expiry asks orders whether its checkout's order
    exists: yes → ``confirmed``; no → ``released``, use back; anything else raises, and
    the bus retries the event."""
    if not rules.is_hold_id(hold_id):
        log.error(f"no redemption can be called {hold_id!r}")
        return
    row = load_redemption(hold_id)
    if row is None or row["status"] != "held":
        return
    reply = services.get("orders", f"/internal/orders/by-hold/{hold_id}")
    if reply.status == 200:
        order = reply.json()
        order_id = order.get("id") if isinstance(order, dict) else None
        apply(hold_id, rules.EXPIRED_WITH_ORDER, order_id if isinstance(order_id, str) else None)
    elif reply.status == 404:
        apply(hold_id, rules.EXPIRED_WITHOUT_ORDER)
    else:
        raise ApiError.unavailable(f"orders answered {reply.status} for hold {hold_id}; retrying the expiry")


def on_event(event: Event) -> None:
    """Events that can never succeed (malformed, or from a plugin that does not own the
    topic) are logged and acknowledged; a failure to reach orders raises (retried)."""
    owner = dict(SUBSCRIPTIONS).get(event.topic)
    if owner is None:
        return
    if event.source != owner:
        log.error(f"ignored {event.topic} from {event.source}: only {owner} publishes it", event_id=event.id)
        return
    try:
        payload = event.json()
    except ValueError as e:
        log.error(f"{event.topic} payload is not a JSON object: {e}", event_id=event.id)
        return
    hold_id = payload.get("hold_id")
    if not isinstance(hold_id, str) or not hold_id:
        return  # an order placed without a hold, or a malformed expiry: nothing of ours
    if event.topic == EXPIRED:
        expire(hold_id)
        return
    order_id = payload.get("order_id")
    order_id = order_id if isinstance(order_id, str) else None
    trigger = rules.ORDER_CREATED if event.topic == "order.created" else rules.ORDER_CANCELLED
    apply(hold_id, trigger, order_id)
