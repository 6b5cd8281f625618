"""Standard Webhooks verification (https://www.standardwebhooks.com/).

The signature itself comes from the maintained `standardwebhooks` package; the header
checks around it are ours because the package hard-codes a five-minute tolerance and
lets malformed headers escape as arbitrary exceptions.
"""

from __future__ import annotations

import binascii
import hmac
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


class VerificationError(Exception):
    """The delivery is not authentic or not fresh; the message says which."""


def parse_secrets(configured: str) -> list[Webhook]:
    """Several space-separated secrets are accepted at once while a secret is rotated."""
    return [Webhook(secret) for secret in configured.split()]


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Sequence[Webhook],
    tolerance_seconds: int,
    now: float | None = None,
) -> str:
    """Check id, timestamp and signature; return the message id."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if len(msg_id) > 256:
        raise VerificationError("webhook-id is too long")
    if not stamp.isdigit() or len(stamp) > 12:
        raise VerificationError("webhook-timestamp must be whole seconds since the epoch")
    sent = int(stamp)
    if abs((now if now is not None else time.time()) - sent) > tolerance_seconds:
        raise VerificationError("webhook-timestamp is outside the accepted tolerance")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("the body is not UTF-8") from exc
    offered = _offered_signatures(signatures)
    moment = datetime.fromtimestamp(sent, tz=UTC)
    for secret in secrets:
        expected = secret.sign(msg_id=msg_id, timestamp=moment, data=text).split(",", 1)[1]
        expected_bytes = binascii.a2b_base64(expected)
        if any(hmac.compare_digest(expected_bytes, sig) for sig in offered):
            return msg_id
    raise VerificationError("no signature matches")


def _offered_signatures(header: str) -> list[bytes]:
    offered = []
    for part in header.split()[:16]:
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            offered.append(binascii.a2b_base64(value))
        except binascii.Error:
            continue
    return offered
