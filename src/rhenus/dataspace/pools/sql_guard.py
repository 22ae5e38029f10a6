"""The guard of compute-to-data queries: it reads the consumer's SQL with a real parser (sqlglot,
DuckDB dialect), refuses anything but one aggregate SELECT over the table ``data``, and writes
the query that actually runs — never the consumer's text — so that every output row comes from
at least *k* rows (see ``docs/pools.md``, "What the guard lets through").

The rewrite, for ``SELECT keys, aggregates FROM data WHERE w GROUP BY keys HAVING h``::

    SELECT keys, agg FILTER (WHERE w) …,
           count(*) FILTER (WHERE w)                        AS __rhenus_n,
           count(*) - count(*) FILTER (WHERE w)             AS __rhenus_out
    FROM data GROUP BY keys
    HAVING __rhenus_n >= k AND (__rhenus_out = 0 OR __rhenus_out >= k) AND h'

Moving ``w`` into the aggregates keeps, for each group, the count of its rows that ``w`` left
out: a filter that leaves out between 1 and k-1 rows of a group would let two queries'
difference (with and without the filter) isolate those rows, so such a group is left out too.
Everything is an allow-list: a node type the guard does not know is refused, whatever it is.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from rhenus.dataspace.pools.sql_check import Checker
from rhenus.dataspace.pools.sql_parse import (
    AGGREGATES,
    CONDITION,
    HAVING,
    HIDDEN,
    TABLE,
    Output,
    Plan,
    Refused,
    name_of,
    parse_one,
    shown,
)

__all__ = ["AGGREGATES", "Output", "Plan", "Refused", "parse_one", "plan"]


class _Guard(Checker):
    """The rewrite (see the module's docstring), from the parts :class:`Checker` let through."""

    def plan(self) -> Plan:
        self.check_shape()
        keys = self.keys()
        key_names = {key.name.lower() for key in keys}
        where = self.select.args.get("where")
        condition = where.this.copy() if where is not None else None
        if condition is not None:
            self.condition(condition, CONDITION, "WHERE")

        def filtered(aggregate: exp.Expr, extra: exp.Expr | None = None) -> exp.Expr:
            test = condition.copy() if condition is not None else None
            if extra is not None:
                test = extra if test is None else exp.and_(exp.paren(test), extra)
            return (
                aggregate
                if test is None
                else exp.Filter(this=aggregate, expression=exp.Where(this=test))
            )

        items: list[exp.Expr] = []
        outputs: list[Output] = []
        by_name: dict[str, int] = {}
        for item in self.select.expressions:
            inner = item.this if isinstance(item, exp.Alias) else item
            if isinstance(inner, exp.Star) or (
                isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)
            ):
                raise Refused("SELECT * returns rows: select aggregates (count(*), avg(column), …)")
            if isinstance(inner, exp.Column):
                column = self.column(inner, "SELECT")
                if column.name.lower() not in key_names:
                    raise Refused(
                        f"{column.name} is neither in GROUP BY nor aggregated: only group keys "
                        "and aggregates are released"
                    )
                name = self.output_name(item, column.name)
                by_name.setdefault(name.lower(), len(outputs))
                outputs.append(Output(name, "", (len(items),)))
                items.append(column)
                continue
            if isinstance(inner, exp.Window):
                raise Refused("window functions (OVER) are not allowed: they return rows")
            if isinstance(inner, exp.Filter):
                raise Refused("FILTER is not allowed in a pool query: use WHERE")
            if type(inner) not in AGGREGATES:
                what = (
                    f"the function {name_of(inner)}"
                    if isinstance(inner, exp.Func)
                    else shown(inner)
                )
                raise Refused(f"{what} is not allowed in SELECT: select group keys and aggregates")
            kind, aggregate, column_name = self.aggregate(inner)
            name = self.output_name(item, shown(inner).lower())
            by_name.setdefault(name.lower(), len(outputs))
            if not self.private:
                outputs.append(Output(name, kind, (len(items),)))
                items.append(filtered(aggregate))
                continue
            if kind == "count":
                outputs.append(Output(name, kind, (len(items),)))
                items.append(filtered(aggregate))
                continue
            assert column_name is not None
            assert self.bounds is not None
            if column_name not in self.bounds:
                raise Refused(
                    f"with differential privacy, {kind}({column_name}) needs bounds for "
                    f'{column_name}: send "bounds": {{"{column_name}": [low, high]}}'
                )
            low, high = self.bounds[column_name]
            column = exp.column(column_name, quoted=True)
            clamped = exp.func(
                "least", exp.func("greatest", column.copy(), _number(low)), _number(high)
            )
            present = exp.Not(this=exp.Is(this=column.copy(), expression=exp.null()))
            at = len(items)
            items.append(filtered(exp.Sum(this=clamped), present))
            if kind == "avg":
                items.append(filtered(exp.Count(this=column.copy()), present))
            outputs.append(Output(name, kind, tuple(range(at, len(items))), (low, high)))
        if not outputs:
            raise Refused("the query selects nothing")

        size = filtered(exp.Count(this=exp.Star()))
        if condition is not None:
            # The rows w left out (false or NULL) are all the others: counted by subtraction,
            # w is evaluated once per row, not again negated (10 million rows, one thread: up
            # to twice raw DuckDB's time with a second filter, about 1.1 times without).
            excluded: exp.Expr = exp.Sub(
                this=exp.Count(this=exp.Star()), expression=exp.paren(size.copy())
            )
        else:
            excluded = exp.Literal.number(0)
        k = exp.Literal.number(self.k)
        having: exp.Expr = exp.and_(
            exp.GTE(this=size.copy(), expression=k),
            exp.paren(exp.or_(
                exp.EQ(this=excluded.copy(), expression=exp.Literal.number(0)),
                exp.GTE(this=excluded.copy(), expression=k.copy()),
            )),
        )  # fmt: skip
        theirs = self.select.args.get("having")
        if theirs is not None:
            having = exp.and_(
                having, exp.paren(self.having(theirs.this.copy(), key_names, filtered))
            )
        query = exp.Select(
            expressions=[
                *(exp.alias_(e, f"{HIDDEN}c{i}", quoted=True) for i, e in enumerate(items)),
                exp.alias_(size, f"{HIDDEN}n", quoted=True),
                exp.alias_(excluded, f"{HIDDEN}out", quoted=True),
            ]
        ).from_(exp.Table(this=exp.to_identifier(TABLE)))
        if keys:
            query = query.group_by(*keys)
        query.set("having", exp.Having(this=having))
        self.order_and_limit(query, outputs, by_name, key_names, filtered)
        return Plan(
            sql=query.sql(dialect="duckdb"),
            outputs=tuple(outputs),
            size_at=len(items),
            excluded_at=len(items) + 1,
            min_group_size=self.k,
            aggregates=frozenset(self.used),
            private=self.private,
            measurements=sum(len(o.sql) for o in outputs if o.function) if self.private else 0,
            columns=frozenset(self.columns),
        )

    def having(self, condition: exp.Expr, key_names: set[str], filtered: _Filtered) -> exp.Expr:
        self.walk_allowed(condition, HAVING, "HAVING")
        for column in list(condition.find_all(exp.Column)):
            if column.find_ancestor(*AGGREGATES) is None:
                if column.name.lower() not in key_names:
                    raise Refused(f"HAVING may name group keys and aggregates, not {column.name}")
                column.replace(self.column(column, "HAVING"))
        for node in list(condition.find_all(*AGGREGATES)):
            if node.find_ancestor(*AGGREGATES) is None:
                node.replace(filtered(self.aggregate(node)[1]))
        return condition

    def order_and_limit(
        self,
        query: exp.Select,
        outputs: list[Output],
        by_name: dict[str, int],
        key_names: set[str],
        filtered: _Filtered,
    ) -> None:
        order = self.select.args.get("order")
        if order is not None:
            ordered = []
            for part in order.expressions:
                extras = [
                    k
                    for k, v in part.args.items()
                    if v and k not in {"this", "desc", "nulls_first"}
                ]
                if not isinstance(part, exp.Ordered) or extras:
                    raise Refused(f"ORDER BY {shown(part)} is not allowed")
                ordered.append(part.copy())
                ordered[-1].set("this", self.sort_key(part.this, outputs, by_name, key_names,
                                                      filtered))  # fmt: skip
            query.set("order", exp.Order(expressions=ordered))
        for part in ("limit", "offset"):
            found = self.select.args.get(part)
            if found is None:
                continue
            value = found.args.get("expression")
            extras = [k for k, v in found.args.items() if v and k != "expression"]
            if not isinstance(value, exp.Literal) or not value.is_int or extras:
                raise Refused(f"{part.upper()} takes a whole number")
            kind = exp.Limit if part == "limit" else exp.Offset
            query.set(part, kind(expression=exp.Literal.number(int(value.this))))

    def sort_key(
        self,
        key: exp.Expr,
        outputs: list[Output],
        by_name: dict[str, int],
        key_names: set[str],
        filtered: _Filtered,
    ) -> exp.Expr:
        if isinstance(key, exp.Literal) and key.is_int:
            position = int(key.this)
            if not 1 <= position <= len(outputs):
                raise Refused(f"ORDER BY {position}: the query has {len(outputs)} columns")
            return exp.column(f"{HIDDEN}c{outputs[position - 1].sql[0]}", quoted=True)
        if isinstance(key, exp.Column) and not key.table and key.name.lower() in by_name:
            output = outputs[by_name[key.name.lower()]]
            return exp.column(f"{HIDDEN}c{output.sql[0]}", quoted=True)
        if isinstance(key, exp.Column) and key.name.lower() in key_names:
            return self.column(key, "ORDER BY")
        if type(key) in AGGREGATES:
            return filtered(self.aggregate(key)[1])
        raise Refused(f"ORDER BY {shown(key)}: order by output columns, group keys or aggregates")


_Filtered = Callable[..., exp.Expr]


def _number(value: float) -> exp.Expr:
    literal = exp.Literal.number(repr(abs(float(value))))
    return exp.Neg(this=literal) if value < 0 else literal


def plan(
    sql: str,
    *,
    min_group_size: int,
    allowed: frozenset[str],
    bounds: dict[str, tuple[float, float]] | None = None,
) -> Plan:
    """The plan of running ``sql`` so that every output row comes from at least
    ``min_group_size`` rows; ``bounds`` (column → clamping bounds) turns on differential privacy.
    Raises :class:`Refused` with the reason for anything but an aggregate query over ``data``."""
    try:
        return _Guard(parse_one(sql), k=min_group_size, allowed=allowed, bounds=bounds).plan()
    except RecursionError:
        # sqlglot's parser and generator recurse: a pathological nesting is refused, not a 500.
        raise Refused("the query is nested too deeply") from None
