"""The carbon intensity of electricity (g CO2eq per kWh), from codecarbon's bundled data.

Offline only: the figure comes from the tables codecarbon ships, through the same code its
offline tracker uses (``Emissions.get_private_infra_emissions``), so an emission computed
here equals the one codecarbon's tracker reports for the same energy and place. Codes are
checked here first, because codecarbon answers an unknown country or region with the world
average and a log line nobody sees.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from auditor.contract.errors import UsageError

#: Countries for which codecarbon has figures below the country level, and the word for them.
REGIONAL = {"USA": "state", "CAN": "province", "CHN": "province", "SWE": "bidding zone",
            "NOR": "bidding zone", "FIN": "bidding zone"}


#: What codecarbon ignores at the end of a Chinese province's name.
_CHINA_SUFFIX = re.compile(r"\s+(autonomous region|municipality|province|sheng|shi|zizhiqu)$")


@dataclass(frozen=True)
class Intensity:
    """``g_per_kwh`` for ``place`` (``Germany``, ``USA, california``, ``world average``)."""

    g_per_kwh: float
    place: str
    country: str | None
    region: str | None
    source: str


@cache
def _table(name: str) -> Any:
    """One of codecarbon's bundled data files, read directly (its own loader imports pandas
    for every table at once: too slow for checking options before a run)."""
    from importlib.resources import files

    folder = files("codecarbon") / "data" / "private_infra"
    for part in name.split("/"):
        folder = folder / part
    return json.loads(folder.read_text("utf-8"))


def _version() -> str:
    import codecarbon

    return str(getattr(codecarbon, "__version__", ""))


def countries() -> dict[str, str]:
    """Every country codecarbon has a figure for: ISO 3166 alpha-3 code -> name."""
    mix = _table("global_energy_mix.json")
    return {code: str(row.get("country_name") or code) for code, row in mix.items()}


def country_code(text: str) -> str:
    """The alpha-3 code for a code (``DEU``, ``de``) or a name (``Germany``); UsageError if unknown."""
    known = countries()
    wanted = text.strip()
    if wanted.upper() in known:
        return wanted.upper()
    by_name = {name.casefold(): code for code, name in known.items()}
    if wanted.casefold() in by_name:
        return by_name[wanted.casefold()]
    if len(wanted) == 2:
        try:
            import pycountry

            found = pycountry.countries.get(alpha_2=wanted.upper())
        except Exception:  # noqa: BLE001 - pycountry is codecarbon's dependency, not ours
            found = None
        if found is not None and found.alpha_3 in known:
            return str(found.alpha_3)
    close = sorted(code for code, name in known.items()
                   if name.casefold().startswith(wanted.casefold()[:3]) or code.startswith(wanted.upper()[:2]))
    raise UsageError(
        f"carbon.country {text!r} is not a country codecarbon has grid data for.",
        hint=("Give an ISO 3166 alpha-3 code such as DEU, FRA, GBR or USA (or the country's name)"
              + (f"; close: {', '.join(close[:8])}" if close else "") + "."),
    )


def regions(country: str) -> dict[str, str]:
    """The regions codecarbon has figures for in ``country`` (alpha-3): key -> display name."""
    if country == "USA":
        return {k: k.title() for k in _table("2023/usa_emissions.json") if not k.startswith("_")}
    if country == "CAN":
        return {k: k.title() for k in _table("2023/canada_energy_mix.json")}
    if country == "CHN":
        table = _table("2023/china_provincial_emissions.json")["data"]
        return {name: row.get("description", name) for row in table.values() for name in row["names"]}
    if country in ("SWE", "NOR", "FIN"):
        zones = _table("nordic_emissions.json")["data"]
        prefix = {"SWE": "SE", "NOR": "NO", "FIN": "FI"}[country]
        return {z.lower(): z for z in zones if z.startswith(prefix)}
    return {}


def region_key(country: str, text: str) -> str:
    """The region as codecarbon looks it up (lower case), or UsageError naming the choices."""
    known = regions(country)
    if not known:
        raise UsageError(
            f"carbon.region {text!r}: codecarbon has no regional figures for {country}.",
            hint=f"Leave carbon.region empty; regions exist only for {', '.join(REGIONAL)}.",
        )
    key = " ".join(text.strip().lower().split())
    if country == "CHN":
        key = _CHINA_SUFFIX.sub("", key)
    if key not in known:
        shown = sorted(set(known))
        raise UsageError(
            f"carbon.region {text!r} is not a {REGIONAL[country]} codecarbon knows in {country}.",
            hint=f"Use one of: {', '.join(shown[:12])}{', ...' if len(shown) > 12 else ''}.",
        )
    return key


def _source(country: str | None, region: str | None, year: Any) -> str:
    version = _version()
    if region and country == "USA":
        meta = _table("2023/usa_emissions.json").get("_source", {})
        return f"{meta.get('name', 'EPA eGRID')} ({meta.get('year', '')}), as shipped with codecarbon {version}"
    if region and country == "CAN":
        return f"the province's generation mix × codecarbon {version}'s per-source factors"
    if region and country == "CHN":
        meta = _table("2023/china_provincial_emissions.json").get("metadata", {})
        return f"China MEE/NBS provincial factors ({meta.get('year', '')}, CO2 only), as shipped with codecarbon {version}"
    if region and country in ("SWE", "NOR", "FIN"):
        return f"ENTSO-E generation mix per bidding zone, as shipped with codecarbon {version}"
    return f"codecarbon {version}'s national energy-mix table ({year})"


def place(country: str | None, region: str | None) -> tuple[str | None, str | None]:
    """The country's alpha-3 code and the region's key, checked (UsageError when unknown);
    reads codecarbon's tables only, fast enough to check options before a run."""
    if region and not country:
        raise UsageError("carbon.region needs carbon.country.", hint="Set both, e.g. country=USA, region=california.")
    code = country_code(country) if country else None
    return code, (region_key(code, region) if (code and region) else None)


def intensity(country: str | None = None, region: str | None = None, given: float | None = None) -> Intensity:
    """The carbon intensity for a place; the world average when no country is given.

    ``given`` (g/kWh, e.g. from an electricity contract) replaces the tables.
    """
    code, key = place(country, region)
    names = countries()
    where = (names[code] + (f", {regions(code)[key]}" if key else "")) if code else "world average"
    if given is not None:
        return Intensity(float(given), where if code else "as given", code, key, "given in the options")
    if code is None:
        table = _table("carbon_intensity_per_source.json")
        return Intensity(float(table["world_average"]), where, None, None,
                         f"codecarbon {_version()}'s world average ({table.get('world_average_source', 'IEA')})")
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    logger = logging.getLogger("codecarbon")
    level, logger.level = logger.level, logging.CRITICAL  # we validated; its fallbacks are silent here
    try:
        kg = Emissions(DataSource()).get_private_infra_emissions(
            Energy.from_energy(kWh=1.0), GeoMetadata(country_iso_code=code, country_name=names[code], region=key)
        )
    finally:
        logger.level = level
    year = _table("global_energy_mix.json")[code].get("year", "")
    return Intensity(float(kg) * 1000.0, where, code, key, _source(code, key, year))
