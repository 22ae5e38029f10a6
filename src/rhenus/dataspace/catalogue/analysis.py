"""Text analysis for catalogue search: the same terms on SQLite and PostgreSQL.

A catalogue entry carries French, German and English text, and a query's language is unknown,
so every word is indexed under its Snowball stem in each of the three languages (French
"hôpitaux" and "hôpital" share the stem "hôpital"; German "Krankenhäuser" and "Krankenhaus"
share "krankenhaus"), with diacritics folded *after* stemming so that "hopitaux" typed without
accents still matches. A query word matches if any of its stems does. Doing this in Python
rather than in each engine's own configuration keeps results identical on both engines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import Stemmer

LANGUAGES = ("french", "german", "english")
_STEMMERS = {lang: Stemmer.Stemmer(lang) for lang in LANGUAGES}
_WORD = re.compile(r"\w+")
MAX_QUERY_TERMS = 12
# Words that say nothing about a dataset, left out of queries (not of the index) unless a query
# has nothing else: articles, prepositions, conjunctions and pronouns of the three languages.
_STOP_WORDS = (
    "le la les l un une des du de d au aux et ou en dans par pour sur sous avec sans chez "
    "entre vers ce cet cette ces son sa ses leur leurs qui que quoi dont où est sont a ont "
    "se ne pas plus il elle ils elles on nous vous je tu y à "
    "der die das den dem des ein eine einer eines einem einen und oder in im am an auf aus "
    "bei mit nach von vom zu zum zur für über unter vor durch ohne gegen um ist sind wird "
    "werden sich nicht auch als wie es er sie wir ihr "
    "the a an and or of in on at to for from by with without into over under is are be "
    "this that these those it its as"
)
STOP_WORDS = frozenset(_STOP_WORDS.split())


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=200_000)
def stems(word: str) -> tuple[str, ...]:
    """The distinct folded stems of one (case-folded) word in the three languages."""
    found = {_fold(_STEMMERS[lang].stemWord(word)) for lang in LANGUAGES}
    found.add(_fold(word))  # the word itself: names, codes and acronyms stay findable
    return tuple(sorted(s for s in found if s))


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def index_terms(texts: Iterable[str]) -> str:
    """What goes into the full-text index for these texts: their stems, space separated."""
    seen: dict[str, None] = {}
    for text in texts:
        for word in words(text):
            for stem in stems(word):
                seen.setdefault(stem, None)
    return " ".join(seen)


def query_terms(query: str) -> list[tuple[str, ...]]:
    """A query as a list of words, each the alternatives (its stems) any of which may match.

    Every stem is made of word characters only, so it can be quoted into an FTS5 or tsquery
    expression without any operator of either syntax getting through.
    """
    terms: list[tuple[str, ...]] = []
    given = words(query)
    meaningful = [word for word in given if word not in STOP_WORDS] or given
    for word in meaningful[:MAX_QUERY_TERMS]:
        alternatives = stems(word)
        if alternatives and alternatives not in terms:
            terms.append(alternatives)
    return terms


def fts5_match(terms: list[tuple[str, ...]]) -> str:
    """``("a" OR "b") AND ("c")`` for SQLite FTS5."""
    return " AND ".join("(" + " OR ".join(f'"{s}"' for s in alts) + ")" for alts in terms)


def tsquery(terms: list[tuple[str, ...]]) -> str:
    """``('a' | 'b') & ('c')`` for PostgreSQL ``to_tsquery('simple', …)``."""
    return " & ".join("(" + " | ".join(f"'{s}'" for s in alts) + ")" for alts in terms)
