"""Coupons as an admin manages them: ``/api/v1/admin/promotions``."""

from __future__ import annotations

from typing import Any, Optional

from kirana_sdk import ApiError, CapError, Paging, Request, Response, Validator, new_id, now_rfc3339, parse_rfc3339, rfc3339, sql
from kirana_shop import access

from . import rules
from .api import router

COLUMNS = (
    "id, code, kind, value, min_cart_value, max_discount, starts_at, ends_at, max_uses, "
    "max_uses_per_customer, uses, is_active, created_at, updated_at"
)

# Fields an admin sets, in the order they are stored.
EDITABLE = (
    "code",
    "kind",
    "value",
    "min_cart_value",
    "max_discount",
    "starts_at",
    "ends_at",
    "max_uses",
    "max_uses_per_customer",
    "is_active",
)

COUPON_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "code": {"type": "string", "pattern": "^[A-Z0-9]{3,20}$"},
        "kind": {"type": "string", "enum": list(rules.KINDS)},
        "value": {"type": "integer"},
        "min_cart_value": {"type": "integer"},
        "max_discount": {"type": ["integer", "null"]},
        "starts_at": {"type": ["string", "null"], "format": "date-time"},
        "ends_at": {"type": ["string", "null"], "format": "date-time"},
        "max_uses": {"type": ["integer", "null"]},
        "max_uses_per_customer": {"type": ["integer", "null"]},
        "uses": {"type": "integer"},
        "is_active": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_INPUT_PROPERTIES = {
    "code": {"type": "string", "minLength": 3, "maxLength": 20},
    "kind": {"type": "string", "enum": list(rules.KINDS)},
    "value": {"type": "integer", "minimum": 1},
    "min_cart_value": {"type": "integer", "minimum": 0},
    "max_discount": {"type": ["integer", "null"], "minimum": 1},
    "starts_at": {"type": ["string", "null"], "format": "date-time"},
    "ends_at": {"type": ["string", "null"], "format": "date-time"},
    "max_uses": {"type": ["integer", "null"], "minimum": 1},
    "max_uses_per_customer": {"type": ["integer", "null"], "minimum": 1},
    "is_active": {"type": "boolean"},
}
CREATE_SCHEMA = {"type": "object", "required": ["code", "kind", "value"], "properties": _INPUT_PROPERTIES}
PATCH_SCHEMA = {"type": "object", "properties": _INPUT_PROPERTIES}
PAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": COUPON_SCHEMA},
        "page": {"type": "integer"},
        "page_size": {"type": "integer"},
        "total": {"type": "integer"},
    },
}


def view(row: sql.Row) -> dict[str, Any]:
    """A coupon row as the API shows it."""
    return {
        "id": row["id"],
        "code": row["code"],
        "kind": row["kind"],
        "value": row.int("value"),
        "min_cart_value": row.int("min_cart_value"),
        "max_discount": row.int("max_discount"),
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "max_uses": row.int("max_uses"),
        "max_uses_per_customer": row.int("max_uses_per_customer"),
        "uses": row.int("uses"),
        "is_active": row.bool("is_active"),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def as_rules(row: sql.Row) -> rules.Coupon:
    return rules.Coupon(
        kind=row["kind"],
        value=row.int("value"),
        min_cart_value=row.int("min_cart_value"),
        max_discount=row.int("max_discount"),
        starts_at=parse_rfc3339(row["starts_at"]) if row["starts_at"] else None,
        ends_at=parse_rfc3339(row["ends_at"]) if row["ends_at"] else None,
        max_uses=row.int("max_uses"),
        max_uses_per_customer=row.int("max_uses_per_customer"),
        uses=row.int("uses"),
    )


def read_fields(body: dict, v: Validator, creating: bool) -> dict[str, Any]:
    """The editable fields present in ``body``, each checked on its own (errors go to
    ``v``); ``code`` normalised, timestamps as stored text."""
    out: dict[str, Any] = {}
    if creating or "code" in body:
        raw = v.string(body, "code", max_len=64)
        if raw is not None:
            code = rules.normalize_code(raw)
            if rules.is_code(code):
                out["code"] = code
            else:
                v.push("code", "must be 3 to 20 letters or digits")
    if creating or "kind" in body:
        kind = v.choice(body, "kind", rules.KINDS)
        if kind is not None:
            out["kind"] = kind
    if creating or "value" in body:
        value = v.integer(body, "value", minimum=1, maximum=rules.MAX_PAISE)
        if value is not None:
            out["value"] = value
    if "min_cart_value" in body:
        m = v.integer(body, "min_cart_value", minimum=0, maximum=rules.MAX_PAISE)
        if m is not None:
            out["min_cart_value"] = m
    for name, top in (
        ("max_discount", rules.MAX_PAISE),
        ("max_uses", rules.MAX_COUNT),
        ("max_uses_per_customer", rules.MAX_COUNT),
    ):
        if name in body:
            n = v.integer(body, name, required=False, nullable=True, minimum=1, maximum=top)
            if n is not None or (body[name] is None):
                out[name] = n
    for name in ("starts_at", "ends_at"):
        if name in body:
            t = v.timestamp(body, name, required=False, nullable=True)
            if t is not None or body[name] is None:
                out[name] = None if t is None else rfc3339(t)
    if "is_active" in body:
        active = v.boolean(body, "is_active")
        if active is not None:
            out["is_active"] = active
    return out


def check_whole(c: dict[str, Any], v: Validator) -> None:
    """Rules across fields, on the coupon as it would be stored (fields already in
    error are not judged again)."""
    if not v.has("value") and not v.has("kind"):
        if c["kind"] == "percent" and not rules.PERCENT_MIN <= c["value"] <= rules.PERCENT_MAX:
            v.push("value", f"must be {rules.PERCENT_MIN} to {rules.PERCENT_MAX} for a percent coupon")
    if c["kind"] == "flat" and c["max_discount"] is not None and not v.has("max_discount"):
        v.push("max_discount", "applies to percent coupons only")
    if c["starts_at"] and c["ends_at"] and not v.has("ends_at") and c["ends_at"] <= c["starts_at"]:
        v.push("ends_at", "must be after starts_at")


def load(coupon_id: str) -> sql.Row:
    row = sql.query_one(f"SELECT {COLUMNS} FROM coupons WHERE id = $1", coupon_id)
    if row is None:
        raise ApiError.not_found("coupon")
    return row


def _taken(code: str) -> ApiError:
    return ApiError.already_exists(f"coupon code {code} is taken").with_details({"field": "code"})


@router.post(
    "/api/v1/admin/promotions",
    access.ADMIN,
    summary="Creates a coupon (code 3..20 letters/digits, case-insensitive)",
    request_schema=CREATE_SCHEMA,
    response_schema=COUPON_SCHEMA,
)
def create(req: Request) -> Response:
    body = req.json()
    v = Validator()
    fields = read_fields(body, v, creating=True)
    c = {
        "min_cart_value": 0,
        "max_discount": None,
        "starts_at": None,
        "ends_at": None,
        "max_uses": None,
        "max_uses_per_customer": None,
        "is_active": True,
        **fields,
    }
    if v.is_empty():
        check_whole(c, v)
    v.finish()
    now = now_rfc3339()
    coupon_id = new_id("cpn")
    inserted = sql.execute(
        "INSERT INTO coupons (id, code, kind, value, min_cart_value, max_discount, starts_at, "
        "ends_at, max_uses, max_uses_per_customer, uses, is_active, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13) "
        "ON CONFLICT (code) DO NOTHING",
        coupon_id,
        *(c[k] for k in EDITABLE),
        now,
        now,
    )
    if inserted == 0:
        raise _taken(c["code"])
    return Response.created(view(load(coupon_id)))


@router.get(
    "/api/v1/admin/promotions",
    access.ADMIN,
    summary="Coupons, newest first; filter is_active",
    response_schema=PAGE_SCHEMA,
)
def list_coupons(req: Request) -> Response:
    errors: list[dict] = []
    paging: Optional[Paging] = None
    active: Optional[bool] = None
    try:
        paging = Paging.from_request(req)
    except ApiError as e:
        errors.extend(e.details.get("fields", []))
    try:
        active = req.query_bool("is_active")
    except ApiError as e:
        errors.extend(e.details.get("fields", []))
    if errors or paging is None:
        raise ApiError.validation(errors)
    where, params = ("WHERE is_active = $1", [active]) if active is not None else ("", [])
    total = sql.scalar(f"SELECT COUNT(*) AS n FROM coupons {where}", *params)
    n = len(params)
    rows = sql.query(
        f"SELECT {COLUMNS} FROM coupons {where} ORDER BY created_at DESC, id DESC "
        f"LIMIT ${n + 1} OFFSET ${n + 2}",
        *params,
        paging.limit,
        paging.offset,
    )
    return Response.ok(paging.envelope([view(r) for r in rows], int(total)))


@router.get(
    "/api/v1/admin/promotions/{id}",
    access.ADMIN,
    summary="One coupon",
    response_schema=COUPON_SCHEMA,
)
def get(req: Request) -> Response:
    return Response.ok(view(load(req.param("id"))))


@router.patch(
    "/api/v1/admin/promotions/{id}",
    access.ADMIN,
    summary="Updates a coupon's fields (null clears an optional one)",
    request_schema=PATCH_SCHEMA,
    response_schema=COUPON_SCHEMA,
)
def update(req: Request) -> Response:
    body = req.json()
    row = load(req.param("id"))
    v = Validator()
    fields = read_fields(body, v, creating=False)
    current = view(row)
    c = {k: current[k] for k in EDITABLE}
    c.update(fields)
    if v.is_empty():
        check_whole(c, v)
    v.finish()
    if c["code"] != current["code"]:
        other = sql.query_one("SELECT id FROM coupons WHERE code = $1 AND id <> $2", c["code"], row["id"])
        if other is not None:
            raise _taken(c["code"])
    try:
        sql.execute(
            "UPDATE coupons SET code = $1, kind = $2, value = $3, min_cart_value = $4, "
            "max_discount = $5, starts_at = $6, ends_at = $7, max_uses = $8, "
            "max_uses_per_customer = $9, is_active = $10, updated_at = $11 WHERE id = $12",
            *(c[k] for k in EDITABLE),
            now_rfc3339(),
            row["id"],
        )
    except CapError as e:
        if e.kind == "conflict":  # the code was taken meanwhile
            raise _taken(c["code"]) from None
        raise
    return Response.ok(view(load(row["id"])))


@router.delete(
    "/api/v1/admin/promotions/{id}",
    access.ADMIN,
    summary="Deactivates a coupon (kept for its redemptions; PATCH is_active re-enables it)",
)
def deactivate(req: Request) -> Response:
    changed = sql.execute(
        "UPDATE coupons SET is_active = $1, updated_at = $2 WHERE id = $3",
        False,
        now_rfc3339(),
        req.param("id"),
    )
    if changed == 0:
        raise ApiError.not_found("coupon")
    return Response.no_content()
