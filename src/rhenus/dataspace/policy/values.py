"""Right-operand values (ODRL 2.2 Information Model §2.5.1: ``rightOperand`` is a literal, an IRI
or a list of them) and the datatypes the left operands read from them: xsd:dateTime and xsd:date
(XML Schema 1.1 Part 2, §3.3.7 and §3.3.9), xsd:duration (§3.3.6), and ISO 3166-1 countries,
the European Union and the European Economic Area."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pycountry

from rhenus.core.geo import EU_MEMBER_STATES

Scalar = str | int | float | bool


class Malformed(ValueError):
    """A value a constraint cannot be read with; its message says why, for the policy's author."""


def literals(value: Any) -> list[Scalar]:
    """The values of a right operand written as a scalar, a list, ``{"@value": …}``,
    ``{"@id": …}`` or ``{"@list"/"@set": […]}`` (JSON-LD 1.1 §4.2 and §4.3), flattened."""
    if isinstance(value, list):
        return [item for part in value for item in literals(part)]
    if isinstance(value, dict):
        for keyword in ("@list", "@set"):
            if keyword in value and len(value) == 1:
                return literals(value[keyword])
        if "@id" in value and set(value) <= {"@id", "@type"} and isinstance(value["@id"], str):
            return [value["@id"]]
        if "@value" in value and set(value) <= {"@value", "@type", "@language", "@direction"}:
            inner = value["@value"]
            if isinstance(inner, str | int | float | bool):
                return [inner]
        raise Malformed(f"{_short(value)} is not a literal, an IRI or a list of them")
    if isinstance(value, str | int | float | bool):
        return [value]
    raise Malformed(f"{_short(value)} is not a literal, an IRI or a list of them")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def iso(moment: datetime) -> str:
    """An aware datetime as xsd:dateTime in UTC (``…Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- xsd:date and xsd:dateTime -----------------------------------------------------------------
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})Z?")
_DATETIME_START = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def moment(text: str) -> date | datetime:
    """An xsd:date (a ``date``, read in UTC) or an xsd:dateTime (an aware ``datetime`` in UTC; a
    dateTime without a timezone is taken as UTC, so that every node reads it the same way)."""
    found = _DATE.fullmatch(text)
    if found:
        try:
            return date(int(found[1]), int(found[2]), int(found[3]))
        except ValueError:
            raise Malformed(f"{text!r} is not a valid date") from None
    if not _DATETIME_START.match(text):
        raise Malformed(f"{text!r} is not an xsd:dateTime or xsd:date")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"{text!r} is not an xsd:dateTime or xsd:date") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# -- xsd:duration ------------------------------------------------------------------------------
_DURATION = re.compile(
    r"(?P<sign>-)?P(?!$)(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<D>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)(?:\.(?P<f>\d+))?S)?)?"
)


@dataclass(frozen=True)
class Duration:
    """An xsd:duration as its two independent parts (XSD 1.1 Part 2 §3.3.6.1): months (years
    are twelve) and microseconds (days are 86,400 s: every date here is UTC, which has no
    daylight saving). P1M and P30D are therefore different durations, as in XSD."""

    months: int
    microseconds: int


def duration(text: str) -> Duration:
    found = _DURATION.fullmatch(text)
    if not found:
        raise Malformed(f"{text!r} is not an xsd:duration (such as P30D, PT12H or P1Y6M)")
    if found["sign"]:
        raise Malformed(f"{text!r} is a negative duration")
    part = {key: int(value) for key, value in found.groupdict().items() if key != "sign" and value}
    fraction = (found["f"] or "")[:6].ljust(6, "0")  # below a microsecond is dropped
    seconds = ((part.get("D", 0) * 24 + part.get("h", 0)) * 60 + part.get("m", 0)) * 60
    seconds += part.get("s", 0)
    return Duration(
        months=part.get("Y", 0) * 12 + part.get("M", 0),
        microseconds=seconds * 1_000_000 + int(fraction),
    )


def add(start: datetime, period: Duration) -> datetime | None:
    """``start`` plus ``period``, months first with the day pinned to the month's last day when
    it has fewer (XSD 1.1 Part 2 §E.3.3); ``None`` when that lies beyond year 9999."""
    months = start.month - 1 + period.months
    year, month = start.year + months // 12, months % 12 + 1
    if year > MAXYEAR:
        return None
    day = min(start.day, calendar.monthrange(year, month)[1])
    try:
        return start.replace(year=year, month=month, day=day) + timedelta(
            microseconds=period.microseconds
        )
    except (OverflowError, ValueError):
        return None


# -- countries and regions ---------------------------------------------------------------------
AUTHORITY_COUNTRY = "http://publications.europa.eu/resource/authority/country/"
REGIONS = {
    "EU": EU_MEMBER_STATES,
    # The EEA Agreement: the EU member states and Iceland, Liechtenstein and Norway.
    "EEA": EU_MEMBER_STATES | {"IS", "LI", "NO"},
}


@cache
def _alpha2() -> frozenset[str]:
    return frozenset(country.alpha_2 for country in pycountry.countries)


@cache
def _alpha3() -> dict[str, str]:
    return {country.alpha_3: country.alpha_2 for country in pycountry.countries}


def is_country(code: str) -> bool:
    """Whether ``code`` is an ISO 3166-1 alpha-2 code (upper case)."""
    return code in _alpha2()


def area(token: str) -> tuple[str, frozenset[str]]:
    """The canonical name of a spatial right operand and the countries it covers: an ISO 3166-1
    alpha-2 code (any case), ``EU``, ``EEA``, or an EU Publications Office country IRI."""
    if token.startswith(AUTHORITY_COUNTRY):
        code = _alpha3().get(token[len(AUTHORITY_COUNTRY) :].upper())
        if code is None:
            raise Malformed(f"{token!r} is not an ISO 3166-1 country of the EU authority table")
        return code, frozenset({code})
    upper = token.upper()
    if upper in REGIONS:
        return upper, REGIONS[upper]
    if is_country(upper):
        return upper, frozenset({upper})
    raise Malformed(f"{token!r} is not an ISO 3166-1 alpha-2 country code, EU or EEA")
