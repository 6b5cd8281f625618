"""Standard Webhooks verification (https://www.standardwebhooks.com/).

The HMAC itself comes from the maintained `standardwebhooks` package (`Webhook.sign`).
Its `verify` is not used: it hard-codes a five-minute tolerance, checks one secret, and
lets malformed headers escape as arbitrary exceptions (a 500 instead of a 401).
"""

from __future__ import annotations

import binascii
import hmac
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

MAX_SIGNATURES = 16


class VerificationError(Exception):
    """The delivery is not authentic or not fresh; the message says which."""


class MalformedSecret(Exception):
    """The configured secret is not a `whsec_` base64 secret."""


@lru_cache(maxsize=4)
def parse_secrets(configured: str) -> tuple[Webhook, ...]:
    """Several space-separated secrets are accepted at once while a secret is rotated."""
    try:
        return tuple(Webhook(secret) for secret in configured.split())
    except Exception as exc:  # the package raises binascii.Error or its own errors
        raise MalformedSecret(type(exc).__name__) from exc


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Sequence[Webhook],
    tolerance_seconds: int,
    now: float | None = None,
) -> str:
    """Check id, timestamp and signature (headers with lower-case names); the message id."""
    msg_id, sent, signatures = read_headers(headers)
    if abs((time.time() if now is None else now) - sent) > tolerance_seconds:
        raise VerificationError("webhook-timestamp is outside the accepted tolerance")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError("the body is not UTF-8") from exc
    offered = _offered_signatures(signatures)
    moment = datetime.fromtimestamp(sent, tz=UTC)
    for secret in secrets:
        expected = binascii.a2b_base64(secret.sign(msg_id, moment, text).split(",", 1)[1])
        # Every offered signature is compared, in constant time, whatever matched before.
        if sum(hmac.compare_digest(expected, sig) for sig in offered):
            return msg_id
    raise VerificationError("no signature matches")


def read_headers(headers: Mapping[str, str]) -> tuple[str, int, str]:
    """The id, timestamp and signatures, well-formed, or VerificationError.

    Checked before anything else, secret or body: `int()` would take non-ASCII digits
    (`"١٧٠٠٠٠٠٠٠٠"`) and a too-long number would overflow the calendar.
    """
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if len(msg_id) > 256 or not msg_id.isascii() or not msg_id.isprintable():
        raise VerificationError("webhook-id must be at most 256 printable ASCII characters")
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise VerificationError("webhook-timestamp must be whole seconds since the epoch")
    return msg_id, int(stamp), signatures


def _offered_signatures(header: str) -> list[bytes]:
    """The `v1,<base64>` entries of a space-delimited header; other versions are skipped."""
    offered = []
    for part in header.split()[:MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            offered.append(binascii.a2b_base64(value, strict_mode=True))
        except binascii.Error:
            continue
    return offered
