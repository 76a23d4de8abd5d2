"""Outgoing email and SMS, recorded in the host's outbox (sent over SMTP when
configured). Not part of the call's transaction, like realtime pushes."""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import mail as wit

from .errors import CapError


def send(channel: str, to: str, subject: str, body: str) -> str:
    """``channel`` is ``email`` or ``sms``; the message id."""
    try:
        return wit.send(wit.Message(channel=channel, to=to, subject=subject, body=body))
    except Err as e:
        raise CapError.from_wit(e.value) from None
