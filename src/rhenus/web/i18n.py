"""Languages of the web app: the gettext catalogues (fr, de, en), which language a request gets,
and the locale-aware formatting of dates, countries and lists.

The catalogues are the committed ``locales/<lang>/LC_MESSAGES/messages.po`` files, compiled in
memory when first used (Babel's ``write_mo``): no compiled ``.mo`` file can go stale or be
forgotten, and a translator's edit shows at the next start. ``make messages`` extracts the
strings of the templates and of the Python code and updates the catalogues.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Literal

# Babel is imported where it is used: a node serving no page (a homeserver, an API) never loads
# it or its locale data.
if TYPE_CHECKING:
    from babel.support import Translations

LANGUAGES = ("fr", "de", "en")
ListStyle = Literal["standard", "or"]
DEFAULT_LANGUAGE = "en"
LOCALES = Path(__file__).resolve().parent / "locales"
_ACCEPT_ITEM = re.compile(
    r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$"
)


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


@functools.cache
def translations(lang: str) -> Translations:
    """The compiled catalogue of ``lang`` (one of :data:`LANGUAGES`)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    if lang not in LANGUAGES:
        raise ValueError(f"no catalogue for {lang!r}")
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalogue = read_po(source, locale=lang)
    compiled = BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def from_accept_language(header: str) -> str | None:
    """The first of our languages the browser prefers (RFC 9110 §12.5.4), or None."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        match = _ACCEPT_ITEM.match(item)
        if match is None:
            continue
        try:
            quality = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        language = match.group(1).lower()
        if language in LANGUAGES and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The language of a request: the switch's cookie, else the browser's, else English."""
    if cookie in LANGUAGES:
        return str(cookie)
    return from_accept_language(accept_language or "") or DEFAULT_LANGUAGE


def language_name(lang: str) -> str:
    """A language's own name ("Deutsch", "Français"): how a switch offers it."""
    from babel import Locale

    name = Locale.parse(lang).get_display_name(lang) or lang
    return name[:1].upper() + name[1:]


def country_name(code: str, lang: str) -> str:
    """The country of an ISO 3166-1 alpha-2 code in ``lang``, or the code if unknown."""
    from babel import Locale

    return str(Locale.parse(lang).territories.get(code.upper(), code))


def long_date(value: date | datetime | str, lang: str) -> str:
    """A date as people write it in ``lang`` (31 décembre 2026, 31. Dezember 2026)."""
    from babel.dates import format_date

    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return str(format_date(value, format="long", locale=lang))


def short_datetime(value: datetime, lang: str) -> str:
    from babel.dates import format_datetime

    return str(format_datetime(value, format="short", locale=lang, tzinfo=value.tzinfo))


def listed(items: Sequence[str], lang: str, *, style: ListStyle = "standard") -> str:
    """``a, b and c`` (``style="or"``: ``a, b or c``) in ``lang``."""
    from babel.lists import format_list

    if not items:
        return ""
    return str(format_list(list(items), style=style, locale=lang))


def period(months: int, rest: timedelta, lang: str) -> str:
    """A duration in whole months, days, hours and minutes ("1 month and 15 days")."""
    t = translations(lang)
    days, seconds = divmod(int(rest.total_seconds()), 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes = seconds // 60
    parts = [
        t.ngettext("%(num)d month", "%(num)d months", months) % {"num": months} if months else "",
        t.ngettext("%(num)d day", "%(num)d days", days) % {"num": days} if days else "",
        t.ngettext("%(num)d hour", "%(num)d hours", hours) % {"num": hours} if hours else "",
        t.ngettext("%(num)d minute", "%(num)d minutes", minutes) % {"num": minutes}
        if minutes
        else "",
    ]
    shown = [part for part in parts if part]
    if not shown:
        return t.ngettext("%(num)d minute", "%(num)d minutes", 0) % {"num": 0}
    return listed(shown, lang)


def file_size(size: int, lang: str) -> str:
    """A size in bytes, kB, MB or GB (decimal units, as file managers show them) in ``lang``."""
    from babel.units import format_unit

    for limit, unit in ((1e3, "byte"), (1e6, "kilobyte"), (1e9, "megabyte")):
        if size < limit:
            value = size / (limit / 1e3) if unit != "byte" else size
            return str(format_unit(round(value, 1), f"digital-{unit}", length="short", locale=lang))
    return str(format_unit(round(size / 1e9, 1), "digital-gigabyte", length="short", locale=lang))


def pick(texts: dict[str, str], lang: str) -> str:
    """The text of a ``{language: text}`` field in ``lang``, else English, else any."""
    for candidate in (lang, DEFAULT_LANGUAGE, *sorted(texts)):
        if texts.get(candidate):
            return texts[candidate]
    return ""


def languages() -> Iterable[tuple[str, str]]:
    """Each language with its own name, for the switch."""
    return [(lang, language_name(lang)) for lang in LANGUAGES]
