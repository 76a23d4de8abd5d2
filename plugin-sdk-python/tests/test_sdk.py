"""The SDK's pure parts, natively (the host calls are not reachable here): routing, the
error shape, request parsing, validation, paging, ids and times."""

import json
import unittest
from datetime import datetime, timezone

from kirana_sdk import Access, ApiError, Paging, Request, Response, Router, Validator, new_id, parse_rfc3339, rfc3339
from kirana_sdk.errors import CapError
from kirana_sdk.plugin import Plugin, dispatch
from kirana_sdk.services import Reply
from kirana_shop import access, errors


def json_request(body, content_type="application/json; charset=utf-8", query=""):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request("POST", "/x", headers={"Content-Type": content_type}, body=raw, query=query)


router = Router()


@router.get("/api/v1/things/{id}", Access.PUBLIC, summary="one thing")
def get_thing(req):
    return Response.ok({"id": req.param("id")})


@router.post("/api/v1/things", access.ADMIN)
def boom(req):
    raise ZeroDivisionError("nope")


@router.get("/api/v1/capfail", Access.INTERNAL)
def capfail(req):
    raise CapError("unavailable", "orders is disabled")


class Things(Plugin):
    name = "things"
    router = router


class RouterTest(unittest.TestCase):
    def test_dispatch_by_pattern_or_path(self):
        r = dispatch(Things(), Request("GET", "/api/v1/things/t1", route="/api/v1/things/{id}", params={"id": "t1"}))
        self.assertEqual((r.status, json.loads(r.body)), (200, {"id": "t1"}))
        # Without the host's pattern the concrete path is matched.
        r = dispatch(Things(), Request("GET", "/api/v1/things/t2"))
        self.assertEqual(json.loads(r.body), {"id": "t2"})

    def test_errors_keep_the_api_shape(self):
        r = dispatch(Things(), Request("GET", "/api/v1/nothing", request_id="rq1"))
        body = json.loads(r.body)
        self.assertEqual(r.status, 404)
        self.assertEqual(body["error"]["code"], "not_found")
        self.assertEqual(body["request_id"], "rq1")
        self.assertEqual(body["error"]["details"], {})
        r = dispatch(Things(), Request("GET", "/api/v1/capfail"))
        self.assertEqual((r.status, json.loads(r.body)["error"]["code"]), (503, "plugin_unavailable"))

    def test_duplicate_routes_are_refused(self):
        with self.assertRaises(ValueError):
            router.get("/api/v1/things/{id}", Access.PUBLIC)(get_thing)

    def test_access_levels(self):
        self.assertEqual(access.ADMIN, Access.roles("admin"))
        self.assertFalse(hasattr(Access, "ADMIN"), "the SDK knows no shop roles")
        self.assertEqual(Access.INTERNAL.kind, "internal")
        self.assertEqual(Access.roles("customer", "admin").role_list, ("customer", "admin"))


class RequestTest(unittest.TestCase):
    def test_json_needs_a_json_body(self):
        with self.assertRaises(ApiError) as e:
            json_request({"a": 1}, content_type="text/plain").json()
        self.assertEqual(e.exception.status, 415)
        for raw, code in ((b"{nope", "invalid_json"), (b'{"a": NaN}', "invalid_json"), (b"[1]", "validation_failed")):
            with self.assertRaises(ApiError) as e:
                json_request(raw).json()
            self.assertEqual(e.exception.code, code, raw)
        self.assertEqual(json_request({"a": 1}, content_type="application/vnd.x+json").json(), {"a": 1})

    def test_query_is_decoded_and_typed(self):
        r = Request("GET", "/x", query="q=aloo%20bhujia&page=x&on=true")
        self.assertEqual(r.query("q"), "aloo bhujia")
        self.assertTrue(r.query_bool("on"))
        with self.assertRaises(ApiError) as e:
            r.query_int("page")
        self.assertEqual(e.exception.details["fields"][0]["field"], "page")
        self.assertIsNone(r.query_int("missing"))

    def test_params_that_do_not_convert_are_404(self):
        r = Request("GET", "/x/abc", params={"id": "abc"})
        with self.assertRaises(ApiError) as e:
            r.param("id", int)
        self.assertEqual(e.exception.status, 404)


class ValidatorTest(unittest.TestCase):
    def test_collects_every_field(self):
        v = Validator()
        body = {"name": "", "price": 10.5, "flag": "yes", "when": "tomorrow", "kind": "x", "n": True}
        v.string(body, "name", min_len=1, max_len=5)
        v.integer(body, "price", minimum=1)
        v.boolean(body, "flag")
        v.timestamp(body, "when")
        v.choice(body, "kind", ["a", "b"])
        v.integer(body, "n")
        v.string(body, "missing")
        with self.assertRaises(ApiError) as e:
            v.finish()
        fields = [f["field"] for f in e.exception.details["fields"]]
        self.assertEqual(fields, ["name", "price", "flag", "when", "kind", "n", "missing"])
        self.assertEqual(e.exception.message, "7 fields are invalid")
        self.assertEqual(e.exception.details["fields"][-1]["message"], "is required")

    def test_nullable_and_bounds(self):
        v = Validator()
        self.assertIsNone(v.integer({"a": None}, "a", required=False, nullable=True))
        self.assertEqual(v.integer({"a": 5}, "a", minimum=1, maximum=5), 5)
        self.assertTrue(v.is_empty())
        v.integer({"a": 6}, "a", minimum=1, maximum=5)
        with self.assertRaises(ApiError) as e:
            v.finish()
        self.assertEqual(e.exception.message, "a: must be an integer from 1 to 5")


class PagingTest(unittest.TestCase):
    def test_defaults_bounds_and_envelope(self):
        self.assertEqual(Paging.from_request(Request("GET", "/x")), Paging(1, 20))
        p = Paging.from_request(Request("GET", "/x", query="page=3&page_size=100"))
        self.assertEqual((p.offset, p.limit), (200, 100))
        self.assertEqual(p.envelope([], 7), {"items": [], "page": 3, "page_size": 100, "total": 7})
        for bad in ("page=0", "page_size=0", "page_size=101", "page=x", "page=-1", "page=1.5"):
            with self.assertRaises(ApiError, msg=bad):
                Paging.from_request(Request("GET", "/x", query=bad))
        with self.assertRaises(ApiError) as e:
            Paging.from_request(Request("GET", "/x", query="page=0&page_size=500"))
        self.assertEqual(len(e.exception.details["fields"]), 2)


class UtilTest(unittest.TestCase):
    def test_ids_are_prefixed_unique_and_time_ordered(self):
        a, b = new_id("cpn"), new_id("cpn")
        self.assertTrue(a.startswith("cpn_") and len(a) == 36)
        self.assertNotEqual(a, b)
        self.assertEqual(a[4], b[4])

    def test_times(self):
        self.assertEqual(rfc3339(datetime(2023, 11, 14, 22, 13, 20, 999, tzinfo=timezone.utc)), "2023-11-14T22:13:20Z")
        self.assertEqual(rfc3339(parse_rfc3339("2026-01-01T05:30:00+05:30")), "2026-01-01T00:00:00Z")
        for bad in ("2026-01-01", "2026-01-01T00:00:00", "tomorrow", "", "2026-13-01T00:00:00Z"):
            self.assertIsNone(parse_rfc3339(bad), bad)

    def test_cap_errors_from_wit_names(self):
        class Error_NotConfigured:  # noqa: N801 - the generated name
            value = "no kv"

        e = CapError.from_wit(Error_NotConfigured())
        self.assertEqual((e.kind, e.message), ("not_configured", "no kv"))

    def test_a_peer_error_passes_through(self):
        body = json.dumps({"error": {"code": "insufficient_stock", "message": "short", "details": {"items": ["p"]}}})
        e = Reply(409, [], body.encode()).into_error()
        self.assertEqual((e.status, e.code, e.details), (409, "insufficient_stock", {"items": ["p"]}))
        e = Reply(502, [], b"gateway").into_error()
        self.assertEqual(e.code, "internal")
        # A code of the peer's own passes on; a malformed one does not.
        body = json.dumps({"error": {"code": "coupon_expired", "message": "x"}})
        self.assertEqual(Reply(400, [], body.encode()).into_error().code, "coupon_expired")
        body = json.dumps({"error": {"code": "Not A Code!", "message": "x"}})
        self.assertEqual(Reply(400, [], body.encode()).into_error().code, "internal")
        e = errors.insufficient_stock("short")
        self.assertEqual((e.status, e.code), (409, "insufficient_stock"))


if __name__ == "__main__":
    unittest.main()
