"""ISO 3166-1 alpha-2 codes and a coarse region for each."""

from __future__ import annotations

import pycountry

COUNTRY_CODES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)
