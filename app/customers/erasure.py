"""Which customer ids were erased: a keyed hash per id, checked set-based on every way in.

A keyed hash (HMAC-SHA256 with STRATUM_ERASURE_KEY), not a plain SHA-256: customer ids
are often guessable (`c-1042`, an email address), and a plain digest of a guessable id
can be reversed by trying candidates, so the table would still say who was erased.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from app.core.settings import get_settings


def subject(external_id: str) -> bytes:
    """The erasure key of one customer id."""
    return _digest(_key(), external_id)


def subjects(external_ids: Iterable[str]) -> dict[bytes, str]:
    """Each id by its subject."""
    key = _key()
    return {_digest(key, i): i for i in external_ids}


def subjects_by_id(external_ids: Iterable[str]) -> dict[str, bytes]:
    """Each id's subject."""
    key = _key()
    return {i: _digest(key, i) for i in external_ids}


def _key() -> bytes:
    return get_settings().erasure_key.get_secret_value().encode()


def _digest(key: bytes, external_id: str) -> bytes:
    # The one-shot form: the same digest without an HMAC object per id (ingest hashes
    # every customer of every batch).
    return hmac.digest(key, external_id.encode(), hashlib.sha256)
