"""A coarse world region for each ISO 3166-1 alpha-2 country code: the trade regions
sellers plan in, not a geography lesson."""

from __future__ import annotations

_REGIONS = {
    "europe": "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM "
    "IS IT JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK",
    "north_america": "US CA MX GL PM BM",
    "latin_america": "AG AI AR AW BB BL BO BQ BR BS BZ CL CO CR CU CW DM DO EC FK GD GF GP GT GY "
    "HN HT JM KN KY LC MF MQ MS NI PA PE PR PY SR SV SX TC TT UY VC VE VG VI",
    "asia": "CN HK MO TW JP KR KP MN BN KH ID LA MM MY PH SG TH TL VN AF BD BT IN LK MV NP PK "
    "KZ KG TJ TM UZ",
    "middle_east": "AE AM AZ BH GE IL IQ IR JO KW LB OM PS QA SA SY TR YE",
    "africa": "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS "
    "LY MA MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
    "oceania": "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF WS",
}
_BY_COUNTRY = {code: region for region, codes in _REGIONS.items() for code in codes.split()}


def region_of(country: str) -> str | None:
    """The region of a country code (any case), or None for an unknown code."""
    return _BY_COUNTRY.get(country.upper())
