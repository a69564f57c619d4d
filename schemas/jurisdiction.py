"""Jurisdictions: ISO 3166-1 countries, ISO 3166-2 subdivisions and UN/LOCODE places.

They form a tree used for routing and subscriptions::

    PK                      ISO 3166-1 alpha-2 (pycountry)
    └── PK-SD               ISO 3166-2 (pycountry, with its parent subdivisions if any)
        └── PKKHI           UN/LOCODE place, mapped to its subdivision

Countries and subdivisions come from ``pycountry``. No maintained package ships UN/LOCODE
with subdivisions and place functions, so the places are a small curated file,
``schemas/data/places.csv`` (codes cross-checked against a UN/LOCODE snapshot), which a
deployment extends with :func:`register_places_csv` (for instance with the text of an
extra CSV named in its configuration).

>>> ancestors("PKKHI")
['PKKHI', 'PK-SD', 'PK']
>>> covers("PK", "pkkhi"), covers("PK-PB", "PKKHI")
(True, False)
"""

from __future__ import annotations

import csv
import functools
import io
import re
import threading
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Annotated, Any, TypeVar

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field

from schemas._base import expected

__all__ = [
    "CountryCode",
    "Jurisdiction",
    "Locode",
    "Place",
    "PlaceKind",
    "ancestors",
    "country_alpha2",
    "covers",
    "normalise_jurisdiction",
    "place",
    "register_place",
    "register_places_csv",
    "registered_places",
]

_MAX_CODE = 16
_COUNTRY = re.compile(r"[A-Z]{2}")
_SUBDIVISION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")

JURISDICTION_FORM = (
    "an ISO 3166-1 alpha-2 country (PK), an ISO 3166-2 subdivision (PK-SD) "
    "or a registered UN/LOCODE place (PKKHI)"
)


class PlaceKind(StrEnum):
    """What a place is, as an entry/exit point."""

    SEAPORT = "seaport"
    AIRPORT = "airport"
    LAND_BORDER = "land_border"
    DRY_PORT = "dry_port"


@dataclass(frozen=True, slots=True)
class Place:
    """A UN/LOCODE place and the subdivision it lies in (``""`` if only the country)."""

    locode: str
    name: str
    subdivision: str
    kinds: frozenset[PlaceKind]

    @property
    def country(self) -> str:
        return self.locode[:2]


_lock = threading.Lock()
_places: dict[str, Place] = {}

# Successful look-ups only, keyed by the caller's spelling. Publishing and subscribing ask the
# same few codes for every report, and a pycountry look-up costs microseconds. A known code
# stays known (places are only ever added, and a place cannot be re-registered differently),
# so only _reset_places clears them; the size bound keeps odd spellings from growing them.
_CACHE_MAX = 4096
_normalised: dict[str, str] = {}
_ancestors: dict[str, tuple[str, ...]] = {}
_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value


def register_place(locode: str, name: str, subdivision: str, kinds: frozenset[PlaceKind]) -> Place:
    """Add a UN/LOCODE place. Idempotent for an identical entry.

    Raises ``ValueError`` naming the expected form if the LOCODE is malformed, the
    subdivision is not an ISO 3166-2 code of the LOCODE's country, or the LOCODE is
    already registered differently.
    """
    code = locode.replace(" ", "").upper()
    if _LOCODE.fullmatch(code) is None:
        raise ValueError(
            f"place {locode!r}: expected a UN/LOCODE like PKKHI "
            "(ISO 3166-1 alpha-2 country, then 3 letters or digits 2-9)"
        )
    if _country(alpha_2=code[:2]) is None:
        raise ValueError(f"place {code}: {code[:2]} is not an ISO 3166-1 alpha-2 country")
    sub = subdivision.strip().upper()
    if sub and (_subdivision(sub) is None or sub[:2] != code[:2]):
        raise ValueError(
            f"place {code}: subdivision {subdivision!r} is not an ISO 3166-2 code "
            f"of {code[:2]} (e.g. PK-SD)"
        )
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError(f"place {code}: needs a name of 1 to 100 characters")
    if not kinds:
        raise ValueError(f"place {code}: needs at least one kind ({_kinds_form()})")
    entry = Place(code, name, sub, frozenset(kinds))
    with _lock:
        existing = _places.get(code)
        if existing is not None and existing != entry:
            raise ValueError(f"place {code} is already registered as {existing}")
        _places[code] = entry
    return entry


def register_places_csv(text: str, *, source: str = "<places csv>") -> list[Place]:
    """Register the places of a CSV with the header ``locode,name,subdivision,kinds``.

    ``kinds`` is a ``;``-separated list of :class:`PlaceKind` values. Errors name the
    source and line.
    """
    reader = csv.DictReader(io.StringIO(text))
    want = ["locode", "name", "subdivision", "kinds"]
    if reader.fieldnames != want:
        raise ValueError(f"{source}: expected the header {','.join(want)}")
    added = []
    for row in reader:
        where = f"{source}, line {reader.line_num}"
        try:
            kinds = frozenset(PlaceKind(k.strip()) for k in (row["kinds"] or "").split(";") if k)
            added.append(
                register_place(
                    row["locode"] or "", row["name"] or "", row["subdivision"] or "", kinds
                )
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc} (kinds are {_kinds_form()})") from exc
    return added


def registered_places() -> dict[str, Place]:
    """A snapshot of the registered places by LOCODE."""
    with _lock:
        return dict(_places)


def place(locode: str) -> Place:
    """The registered place for ``locode`` (any case, spaces allowed: ``"pk khi"``)."""
    code = locode.replace(" ", "").upper()[:_MAX_CODE]
    found = _places.get(code)
    if found is None:
        raise ValueError(_unknown_place())
    return found


def normalise_jurisdiction(code: str) -> str:
    """The canonical upper-case form of a known jurisdiction code, or ``ValueError``
    whose message states the expected form."""
    found = _normalised.get(code)
    if found is not None:
        return found
    value = _normalise(code)
    _remember(_normalised, code, value)
    return value


def _normalise(code: str) -> str:
    if len(code) > _MAX_CODE:
        raise ValueError(f"expected {JURISDICTION_FORM}; got {len(code)} characters")
    value = code.strip().upper()
    if _COUNTRY.fullmatch(value):
        if _country(alpha_2=value) is None:
            raise ValueError(
                "expected an ISO 3166-1 alpha-2 country code like PK; this one is not assigned"
            )
        return value
    if _SUBDIVISION.fullmatch(value):
        if _subdivision(value) is None:
            raise ValueError(_unknown_subdivision(value))
        return value
    compact = value.replace(" ", "")
    if _LOCODE.fullmatch(compact):
        if compact not in _places:
            raise ValueError(_unknown_place())
        return compact
    raise ValueError(f"expected {JURISDICTION_FORM}")


def ancestors(code: str) -> list[str]:
    """``code`` and everything above it, nearest first, ending with the country.

    >>> ancestors("GB-KEN")
    ['GB-KEN', 'GB-ENG', 'GB']
    """
    found = _ancestors.get(code)
    if found is None:
        found = tuple(_ancestors_of(code))
        _remember(_ancestors, code, found)
    return list(found)


def _ancestors_of(code: str) -> list[str]:
    value = normalise_jurisdiction(code)
    chain = [value]
    if len(value) == 2:
        return chain
    sub = _places[value].subdivision if "-" not in value else value
    if sub and sub != value:
        chain.append(sub)
    while sub:
        parent = getattr(_subdivision(sub), "parent_code", None)
        if not parent or len(chain) > 8:
            break
        if "-" not in parent:  # older pycountry data omits the country prefix
            parent = f"{value[:2]}-{parent}"
        if parent in chain:
            break
        chain.append(parent)
        sub = parent
    chain.append(value[:2])
    return chain


def first_level_subdivisions(country: str) -> list[str]:
    """The ISO 3166-2 subdivisions directly under ``country`` (no parent), sorted.

    >>> first_level_subdivisions("PK")
    ['PK-BA', 'PK-GB', 'PK-IS', 'PK-JK', 'PK-KP', 'PK-PB', 'PK-SD']
    """
    value = normalise_jurisdiction(country)
    if len(value) != 2:
        raise ValueError(f"expected a country code like PK, got {country!r}")
    return sorted(
        str(s.code) for s in _subdivisions_of(value) if not getattr(s, "parent_code", None)
    )


def covers(scope: str, code: str) -> bool:
    """Whether a subscription to ``scope`` includes reports about ``code``.

    Both must be known jurisdictions; an unknown one raises ``ValueError``.
    """
    return normalise_jurisdiction(scope) in ancestors(code)


def country_alpha2(code: str) -> str:
    """An ISO 3166-1 country given as alpha-2 (``PK``) or alpha-3 (``PAK``), as alpha-2."""
    value = code.strip().upper()
    found = None
    if len(value) == 2 and value.isalpha():
        found = _country(alpha_2=value)
    elif len(value) == 3 and value.isalpha():
        found = _country(alpha_3=value)
    if found is None:
        raise ValueError("expected an ISO 3166-1 country code, alpha-2 (PK) or alpha-3 (PAK)")
    return str(found.alpha_2)


# pycountry is untyped: its look-ups are wrapped here, once.
def _country(*, alpha_2: str = "", alpha_3: str = "") -> Any:
    if alpha_3:
        return pycountry.countries.get(alpha_3=alpha_3)
    return pycountry.countries.get(alpha_2=alpha_2)


def _subdivision(code: str) -> Any:
    return pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]


def _subdivisions_of(country: str) -> list[Any]:
    found = pycountry.subdivisions.get(country_code=country)  # type: ignore[no-untyped-call]
    return list(found or [])


def _unknown_subdivision(value: str) -> str:
    known = sorted(s.code for s in _subdivisions_of(value[:2]))
    hint = f" ({value[:2]} has {', '.join(known[:10])}{', ...' if len(known) > 10 else ''})"
    return "expected an ISO 3166-2 subdivision code like PK-SD; this one does not exist" + (
        hint if known else ""
    )


def _unknown_place() -> str:
    return (
        "expected a registered UN/LOCODE place like PKKHI (Karachi); this one is not "
        "registered: add it to the deployment's extra places CSV"
    )


def _kinds_form() -> str:
    return ", ".join(k.value for k in PlaceKind)


def _jurisdiction(value: str) -> str:
    try:
        return normalise_jurisdiction(value)
    except ValueError as exc:
        raise expected("jurisdiction", str(exc)) from None


def _locode(value: str) -> str:
    try:
        return place(value).locode
    except ValueError as exc:
        raise expected("locode", str(exc)) from None


@functools.lru_cache(maxsize=_CACHE_MAX)
def _country_code(value: str) -> str:
    """``country_alpha2`` as a validator, remembering what it accepted (pycountry's data
    does not change while the process runs; a refusal raises and is not remembered)."""
    try:
        return country_alpha2(value)
    except ValueError as exc:
        raise expected("country", str(exc)) from None


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Jurisdiction = Annotated[
    str, Field(min_length=2, max_length=_MAX_CODE), AfterValidator(_jurisdiction)
]
"""A country, subdivision or registered LOCODE, normalised to upper case."""

Locode = Annotated[str, Field(min_length=5, max_length=6), AfterValidator(_locode)]
"""A registered UN/LOCODE place, normalised (``"pk khi"`` becomes ``PKKHI``)."""

CountryCode = Annotated[
    str, Field(min_length=2, max_length=3), BeforeValidator(_upper), AfterValidator(_country_code)
]
"""An ISO 3166-1 country, alpha-2 or alpha-3 on input, alpha-2 once parsed."""


def _reset_places() -> None:
    """Back to the packaged places only (tests)."""
    with _lock:
        _places.clear()
        _normalised.clear()
        _ancestors.clear()
    _load_packaged()


def _load_packaged() -> None:
    text = resources.files("schemas").joinpath("data/places.csv").read_text(encoding="utf-8")
    register_places_csv(text, source="schemas/data/places.csv")


_load_packaged()
