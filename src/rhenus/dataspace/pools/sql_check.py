"""The checks of the guard (:mod:`.sql_guard`): each part of the consumer's SELECT — its
columns, aggregates, conditions, FROM, GROUP BY and output names — is held against the
allow-lists of :mod:`.sql_parse` and refused with the reason, or handed back rewritten in the
form the guard's query uses (quoted, unqualified columns of ``data``)."""

from __future__ import annotations

from sqlglot import exp

from rhenus.dataspace.pools.sql_parse import (
    AGGREGATES,
    ALIAS,
    DP_AGGREGATES,
    HIDDEN,
    SELECT_PARTS,
    TABLE,
    Refused,
    name_of,
    shown,
)


class Checker:
    """One consumer SELECT under an agreement's *k*, aggregates and (for differential privacy)
    bounds, with what its checks found: the columns it reads and the aggregates it uses."""

    def __init__(
        self,
        select: exp.Select,
        *,
        k: int,
        allowed: frozenset[str],
        bounds: dict[str, tuple[float, float]] | None,
    ) -> None:
        self.select, self.k, self.allowed = select, k, allowed
        self.bounds = None if bounds is None else {n.lower(): b for n, b in bounds.items()}
        self.private = bounds is not None
        self.alias = TABLE
        self.columns: set[str] = set()
        self.used: set[str] = set()

    # -- pieces ------------------------------------------------------------------------------
    def column(self, node: exp.Column, where: str) -> exp.Column:
        """A bare column of ``data``, rewritten quoted and unqualified."""
        if isinstance(node.this, exp.Star):
            raise Refused(f"{shown(node)} in {where} would select every column: name aggregates")
        if node.args.get("db") or node.args.get("catalog"):
            raise Refused(f"{shown(node)}: name columns of the table data only")
        table = node.table
        if table and table.lower() not in {TABLE, self.alias.lower()}:
            raise Refused(f"{shown(node)}: the query reads the table data only")
        name = node.name
        if not name or name.lower().startswith(HIDDEN):
            raise Refused(f"{shown(node)} is not a column of data")
        self.columns.add(name.lower())
        return exp.column(name, quoted=True)

    def aggregate(self, node: exp.Expr) -> tuple[str, exp.Expr, str | None]:
        """An allowed aggregate over a bare column (or ``*``): (name, rewritten, column)."""
        kind = AGGREGATES.get(type(node))
        if kind is None:
            raise Refused(f"{name_of(node)} is not an allowed aggregate function")
        if kind not in self.allowed:
            allowed = ", ".join(sorted(self.allowed))
            extra = " (it returns one row's value)" if kind in {"min", "max", "median"} else ""
            raise Refused(f"{kind}{extra} is not allowed by the agreement; it allows {allowed}")
        if self.private and kind not in DP_AGGREGATES:
            raise Refused(f"{kind} cannot be made differentially private: use count, sum, avg")
        self.used.add(kind)
        argument = node.this
        extras = {k: v for k, v in node.args.items() if v and k not in {"this", "big_int"}}
        if extras:
            raise Refused(f"{shown(node)}: an aggregate takes one column and nothing else")
        distinct = isinstance(argument, exp.Distinct)
        if distinct:
            if kind != "count" or len(argument.expressions) != 1:
                raise Refused(f"{shown(node)}: DISTINCT only in count(DISTINCT column)")
            argument = argument.expressions[0]
        if argument is None or isinstance(argument, exp.Star):
            if kind != "count" or distinct:
                raise Refused(f"{shown(node)}: only count takes *")
            return kind, exp.Count(this=exp.Star()), None
        if not isinstance(argument, exp.Column):
            # An expression inside an aggregate can single a row out (sum(x * (id = 42))):
            # aggregates take a bare column.
            raise Refused(f"{shown(node)}: an aggregate takes a bare column, not an expression")
        column = self.column(argument, "an aggregate")
        inner: exp.Expr = exp.Distinct(expressions=[column]) if distinct else column
        return kind, node.__class__(this=inner), column.name.lower()

    def walk_allowed(self, condition: exp.Expr, allowed: frozenset[type], where: str) -> None:
        # In HAVING, aggregates are checked on their own (self.aggregate): not walked into.
        for node in condition.walk(prune=lambda n: where == "HAVING" and type(n) in AGGREGATES):
            if type(node) in allowed:
                if isinstance(node, exp.Neg) and not isinstance(node.this, exp.Literal):
                    raise Refused(f"{shown(node)} in {where}: arithmetic is not allowed")
                if isinstance(node, exp.In) and any(
                    node.args.get(part) for part in ("query", "unnest", "field")
                ):
                    raise Refused(f"{shown(node)} in {where}: IN takes a list of values")
                continue
            if where == "HAVING" and type(node) in AGGREGATES:
                continue  # checked by the caller
            if isinstance(node, exp.Select | exp.Subquery):
                raise Refused(f"subqueries are not allowed (in {where}: {shown(node)})")
            if isinstance(node, exp.Func):
                raise Refused(f"the function {name_of(node)} is not allowed in {where}")
            raise Refused(f"{shown(node)} is not allowed in {where}")

    def condition(self, node: exp.Expr, allowed: frozenset[type], where: str) -> None:
        self.walk_allowed(node, allowed, where)
        for column in list(node.find_all(exp.Column)):
            column.replace(self.column(column, where))

    # -- the statement -----------------------------------------------------------------------
    def check_shape(self) -> None:
        select = self.select
        for part, value in select.args.items():
            if value and part not in SELECT_PARTS:
                raise Refused(f"{part.rstrip('_s').upper()} is not allowed in a pool query")
        if select.args.get("kind") or select.args.get("distinct"):
            raise Refused("SELECT DISTINCT returns rows, not aggregates")
        source = select.args.get("from_")
        if source is None:
            raise Refused("the query must read FROM data")
        table = source.this
        if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
            raise Refused(f"FROM must name the table data, not {shown(table)}")
        extras = [k for k, v in table.args.items() if v and k not in {"this", "alias"}]
        if table.name.lower() != TABLE or extras:
            raise Refused(f"FROM must name the table data, not {shown(table)}")
        alias = table.args.get("alias")
        if alias is not None:
            if alias.columns:
                raise Refused("the table alias cannot rename columns")
            self.alias = alias.name
        if self.private:
            for part in ("having", "order", "limit", "offset"):
                if select.args.get(part):
                    raise Refused(
                        f"{part.upper()} is not allowed with differential privacy: it would act "
                        "on the exact values before the noise"
                    )

    def keys(self) -> list[exp.Column]:
        group = self.select.args.get("group")
        if group is None:
            return []
        extras = [k for k, v in group.args.items() if v and k != "expressions"]
        if extras:
            raise Refused(f"GROUP BY {extras[0].upper()} is not allowed: group by columns")
        keys = []
        for key in group.expressions:
            if not isinstance(key, exp.Column):
                # An expression as a key can split one row off its group (GROUP BY id = 42).
                raise Refused(f"GROUP BY {shown(key)}: group by bare columns only")
            keys.append(self.column(key, "GROUP BY"))
        return keys

    def output_name(self, item: exp.Expr, fallback: str) -> str:
        if not isinstance(item, exp.Alias):
            return fallback
        alias = item.alias
        if not ALIAS.fullmatch(alias) or alias.lower().startswith(HIDDEN):
            raise Refused(f"{alias[:70]!r} is not a column name the pool accepts")
        return alias
