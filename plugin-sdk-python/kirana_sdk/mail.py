"""Outgoing email, SMS and Web Push, recorded in the host's outbox (email sent over
SMTP when configured; push delivered by the host to each browser the user
subscribed). Not part of the call's transaction, like realtime pushes."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import mail as wit

from .errors import CapError


def send(channel: str, to: str, subject: str, body: str) -> str:
    """``channel`` is ``email``, ``sms`` or ``push`` (``to`` a user id, ``body`` the
    payload of at most 3993 bytes; ``CapError`` not-configured when the user has no
    subscription); the message id."""
    try:
        return wit.send(wit.Message(channel=channel, to=to, subject=subject, body=body))
    except Err as e:
        raise CapError.from_wit(e.value) from None


def push_public_key() -> str:
    """The host's VAPID public key (base64url) for ``pushManager.subscribe``."""
    try:
        return wit.push_public_key()
    except Err as e:
        raise CapError.from_wit(e.value) from None


def push_subscribe(user_id: str, endpoint: str, p256dh: str, auth: str) -> tuple[str, bool]:
    """Stores a browser's push subscription for ``user_id``; ``(id, created)``, created
    False when the user had this endpoint already (same id). A bad endpoint or key is
    an invalid ``CapError`` whose message starts with ``endpoint:``, ``p256dh:`` or
    ``auth:``."""
    try:
        r = wit.push_subscribe(user_id, endpoint, p256dh, auth)
    except Err as e:
        raise CapError.from_wit(e.value) from None
    return r.id, r.created


def push_unsubscribe(user_id: str, subscription_id: str) -> bool:
    """Deletes one of the user's subscriptions; False when the user has no such one."""
    try:
        return wit.push_unsubscribe(user_id, subscription_id)
    except Err as e:
        raise CapError.from_wit(e.value) from None
