"""What a pool query is to the guard: the parser (sqlglot, DuckDB dialect) reading it into one
SELECT, the allow-lists of what it may be made of, and the plan the guard turns it into
(:mod:`.sql_guard` does the checking and the rewrite)."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from rhenus.dataspace.pools.query_plan import Output, Plan, Refused

__all__ = [
    "AGGREGATES",
    "ALIAS",
    "CONDITION",
    "DP_AGGREGATES",
    "HAVING",
    "HIDDEN",
    "SELECT_PARTS",
    "TABLE",
    "Output",
    "Plan",
    "Refused",
    "name_of",
    "parse_one",
    "shown",
]

TABLE = "data"
HIDDEN = "__rhenus_"
MAX_SQL = 10_000

# sqlglot's aggregate classes → the function names a policy lists (rhenus:aggregateFunction).
AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Stddev: "stddev",
    exp.StddevSamp: "stddev",
    exp.StddevPop: "stddev",
    exp.Variance: "variance",
    exp.VariancePop: "variance",
    exp.Min: "min",
    exp.Max: "max",
    exp.Median: "median",
}
# With differential privacy, only these have a bounded sensitivity the noise is scaled to.
DP_AGGREGATES = frozenset({"count", "sum", "avg"})

# What a WHERE condition may be made of. No arithmetic, no CAST (TRY_CAST never fails): a
# run-time error that depends on one row's value (a division by zero, an overflow, a failed
# conversion) would tell the consumer something about that row, below any group size.
CONDITION = frozenset(
    {exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
     exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Null, exp.Boolean, exp.Literal,
     exp.Column, exp.Identifier, exp.Neg, exp.Lower, exp.Upper, exp.Length, exp.Coalesce,
     exp.Trim, exp.TryCast, exp.DataType}
)  # fmt: skip
# A HAVING condition compares aggregates (checked on their own) and group keys with literals.
HAVING = frozenset(
    {exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
     exp.Is, exp.In, exp.Between, exp.Null, exp.Boolean, exp.Literal, exp.Column,
     exp.Identifier, exp.Neg}
)  # fmt: skip
SELECT_PARTS = frozenset({"expressions", "from_", "where", "group", "having", "order", "limit",
                           "offset", "kind"})  # fmt: skip
ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_ ()*.,-]{0,63}")


def shown(node: exp.Expr) -> str:
    text = node.sql(dialect="duckdb")
    return text if len(text) <= 80 else text[:77] + "..."


def name_of(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__


def parse_one(sql: str) -> exp.Select:
    """The single SELECT ``sql`` is, or :class:`Refused` saying what it is instead."""
    if len(sql) > MAX_SQL:
        raise Refused(f"the query is longer than {MAX_SQL} characters")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except SqlglotError as exc:
        raise Refused(f"the query cannot be read as SQL: {str(exc).splitlines()[0][:200]}") from exc
    if not statements:
        raise Refused("the query is empty")
    if len(statements) > 1:
        raise Refused(f"send one statement, not {len(statements)}")
    statement = statements[0]
    if type(statement) is not exp.Select:
        kind = (
            str(statement.this).split()[0].upper()
            if isinstance(statement, exp.Command)
            else type(statement).__name__.upper()
        )
        raise Refused(f"only a SELECT of aggregates is allowed, not {kind}")
    return statement
