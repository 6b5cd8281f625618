"""The JSON spelling of times in notification bodies (RFC 3339, `Z` for UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
