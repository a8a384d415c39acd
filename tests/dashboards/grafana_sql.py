"""Expand a Grafana Postgres query the way Grafana does before it reaches the database.

Grafana first replaces template variables (dashboard variables such as ``$model`` and the built-ins
``$__interval`` / ``$__interval_ms``), then the Postgres data source rewrites its macros
(``$__timeFilter(col)`` and friends) into plain SQL. Only what the dashboards here use, and its close
relatives, is implemented; anything else raises so that a typo cannot pass silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_MACRO = re.compile(r"\$__(\w+)\(([^()]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


class UnknownMacro(ValueError):
    """The query uses a macro or variable this expander (and so, likely, Grafana) does not know."""


def interval_seconds(text: str) -> float:
    """Seconds in a Grafana interval such as ``5m``, ``1h`` or ``'30s'``."""
    match = _INTERVAL.match(text.strip().strip("'\""))
    if not match:
        raise UnknownMacro(f"not a Grafana interval: {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a query: the time range, the interval, the variables' values."""

    time_from: datetime
    time_to: datetime
    interval: str = "1m"
    variables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def last(cls, span: timedelta, interval: str = "1m", **variables: str) -> QueryContext:
        """The range ``now-span`` to a minute from now, so rows written just before are inside it."""
        now = datetime.now(UTC)
        return cls(now - span, now + timedelta(minutes=1), interval, dict(variables))


def _builtin_variables(ctx: QueryContext) -> dict[str, str]:
    seconds = interval_seconds(ctx.interval)
    span = (ctx.time_to - ctx.time_from).total_seconds()
    return {
        "__interval": ctx.interval,
        "__interval_ms": _number(seconds * 1000),
        "__range": f"{int(span)}s",
        "__range_s": str(int(span)),
        "__range_ms": str(int(span * 1000)),
    }


def _replace_variables(sql: str, ctx: QueryContext) -> str:
    known = {**_builtin_variables(ctx), **ctx.variables}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in known:
            return known[name]
        if name.startswith("__"):
            return match.group(0)  # a macro: handled in the second pass
        raise UnknownMacro(f"no value for template variable ${name}")

    return _VARIABLE.sub(substitute, sql)


def _time_group(args: list[str]) -> str:
    if len(args) not in (2, 3):
        raise UnknownMacro(f"$__timeGroup takes (column, interval[, fill]), got {args}")
    seconds = _number(interval_seconds(args[1]))
    return f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"


def _expand_macro(name: str, args: list[str], ctx: QueryContext) -> str:
    start, end = ctx.time_from, ctx.time_to
    if name == "time":
        return f'{args[0]} AS "time"'
    if name == "timeEpoch":
        return f'extract(epoch from {args[0]}) AS "time"'
    if name == "timeFilter":
        return f"{args[0]} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'"
    if name == "timeFrom":
        return f"'{_rfc3339(start)}'"
    if name == "timeTo":
        return f"'{_rfc3339(end)}'"
    if name == "timeGroup":
        return _time_group(args)
    if name == "timeGroupAlias":
        return _time_group(args) + ' AS "time"'
    if name == "unixEpochFilter":
        return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
    if name == "unixEpochFrom":
        return str(int(start.timestamp()))
    if name == "unixEpochTo":
        return str(int(end.timestamp()))
    raise UnknownMacro(f"unknown macro $__{name}")


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL Grafana would send to Postgres for this query in this context."""
    sql = _replace_variables(sql, ctx)

    def macro(match: re.Match[str]) -> str:
        raw = match.group(2).strip()
        args = [a.strip() for a in raw.split(",")] if raw else []
        return _expand_macro(match.group(1), args, ctx)

    expanded = _MACRO.sub(macro, sql)
    leftover = re.search(r"\$\w+|\$\{|\[\[", expanded)
    if leftover:
        raise UnknownMacro(f"unexpanded {leftover.group(0)!r} in query")
    return expanded
