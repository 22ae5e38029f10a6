"""What the guard (:mod:`.sql_guard`) answers: the plan of a pool query, or why it is refused.

Apart from the parser so that the code holding plans (the service, the release of results)
does not import sqlglot (~15 MiB resident) before the first query arrives."""

from __future__ import annotations

from dataclasses import dataclass, field


class Refused(ValueError):
    """The query is not one the guard lets run; the message says why, for the consumer."""


@dataclass(frozen=True)
class Output:
    """One column of the released result: a group key, or an aggregate.

    ``sql`` are its positions in the rows the rewritten query returns: one, or two for an
    average under differential privacy (the sum and the count it is computed from)."""

    name: str
    function: str  # "" for a group key
    sql: tuple[int, ...]
    bounds: tuple[float, float] | None = None  # clamping bounds (differential privacy)


@dataclass(frozen=True)
class Plan:
    """The query to run and how to read its rows back."""

    sql: str
    outputs: tuple[Output, ...]
    size_at: int  # position of __rhenus_n: the rows of the group that went into the aggregates
    excluded_at: int  # position of __rhenus_out: the group's rows the filter left out
    min_group_size: int
    aggregates: frozenset[str]
    private: bool  # noise is added (differential privacy)
    measurements: int = 0  # noisy values per group (the query's ε is split between them)
    columns: frozenset[str] = field(default_factory=frozenset)  # the dataset columns it reads
