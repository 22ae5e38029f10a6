"""What leaves the provider: the rows of a guarded query turned into the released result — the
hidden group sizes checked once more and dropped, values made JSON, and, under differential
privacy, Laplace noise added to every count and sum (Dwork & Roth, *The Algorithmic
Foundations of Differential Privacy*, §3.3), with the query's ε split evenly between them.

Sensitivity: adding or removing one row changes a count by at most 1 and a sum of values
clamped to [low, high] by at most max(|low|, |high|), in one group only (groups are disjoint,
so each group's values compose in parallel). An average is a noisy sum over a noisy count,
clamped to its bounds again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from decimal import Decimal
from typing import Any

from rhenus.core.audit import canonical_json
from rhenus.dataspace.pools.query_plan import Plan

_RANDOM = secrets.SystemRandom()


def laplace(scale: float) -> float:
    """One draw of Laplace(0, scale), from the operating system's random source."""
    u = _RANDOM.random() - 0.5  # in [-0.5, 0.5)
    # 1 - 2|u| lies in (0, 1]: the logarithm is finite.
    return -scale * math.copysign(1.0, u) * math.log(1.0 - 2.0 * abs(u))


def _json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return str(value)


def release(plan: Plan, rows: list[tuple[Any, ...]], epsilon_micro: int | None) -> list[list[Any]]:
    """The released rows (see the module's docstring)."""
    k = plan.min_group_size
    scale_of_one = 0.0
    if plan.private:
        if not epsilon_micro or plan.measurements < 1:
            raise ValueError("a private plan needs a positive ε and something to measure")
        scale_of_one = plan.measurements / (epsilon_micro / 1_000_000)  # Δ = 1
    released: list[list[Any]] = []
    for row in rows:
        # The rewritten HAVING already keeps these rows out; checking again costs nothing.
        size, excluded = row[plan.size_at], row[plan.excluded_at]
        if size < k or 0 < excluded < k:
            continue
        out: list[Any] = []
        for output in plan.outputs:
            values = [row[i] for i in output.sql]
            if not output.function or not plan.private:
                out.append(_json(values[0]))
            elif output.function == "count":
                out.append(max(0, round(float(values[0]) + laplace(scale_of_one))))
            else:
                assert output.bounds is not None
                low, high = output.bounds
                sensitivity = max(abs(low), abs(high)) or 1.0
                total = float(values[0] or 0) + laplace(scale_of_one * sensitivity)
                if output.function == "sum":
                    out.append(total)
                    continue
                count = float(values[1] or 0) + laplace(scale_of_one)
                out.append(min(high, max(low, total / count)) if count >= 1 else None)
        released.append(out)
    return released


def result_digest(columns: list[str], rows: list[list[Any]]) -> str:
    """sha-256 of the canonical JSON of a result: what both audit logs record."""
    return hashlib.sha256(canonical_json({"columns": columns, "rows": rows})).hexdigest()
