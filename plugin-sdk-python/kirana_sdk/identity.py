"""Tokens, sessions and passwords (needs the ``identity`` capability). The signing key
never leaves the host."""

from __future__ import annotations

from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import identity as wit

from .errors import CapError


def _call(f: Any, *args: Any) -> Any:
    try:
        return f(*args)
    except Err as e:
        raise CapError.from_wit(e.value) from None


def issue(user_id: str, role: str, user_agent: Optional[str] = None) -> Any:
    """Starts a session and issues its first token pair (``access_token``,
    ``refresh_token``, ``expires_in``, ``session_id``, ``user_id``, ``role``)."""
    return _call(wit.issue, user_id, role, user_agent)


def refresh(refresh_token: str) -> Any:
    return _call(wit.refresh, refresh_token)


def sessions(user_id: str) -> list:
    return _call(wit.sessions, user_id)


def revoke_session(user_id: str, session_id: str) -> bool:
    return _call(wit.revoke_session, user_id, session_id)


def revoke_all(user_id: str) -> int:
    return _call(wit.revoke_all, user_id)


def hash_password(password: str) -> str:
    """Argon2id, at native speed."""
    return _call(wit.hash_password, password)


def verify_password(password: str, hashed: str) -> bool:
    return _call(wit.verify_password, password, hashed)
