"""ISO 4217 currency codes."""

from __future__ import annotations

import pycountry

CURRENCY_CODES: frozenset[str] = frozenset(c.alpha_3 for c in pycountry.currencies)
