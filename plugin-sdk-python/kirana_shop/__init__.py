"""What the shop's Python plugins share that is not the platform's: the shop's roles as
route access values, and its error codes (the Python side of the Rust crate
``kirana_shop``, ``shop/``). ``kirana_sdk`` stays free of grocery notions: a plugin for
another kind of shop uses its own roles and codes.

    from kirana_shop import access, errors

    @router.post("/api/v1/admin/things", access.ADMIN)
    ...
    raise errors.insufficient_stock("only 2 left")
"""

from . import access, errors, roles

__all__ = ["access", "errors", "roles"]
