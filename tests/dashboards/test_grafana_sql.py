"""The macro expander the panel tests rely on produces what Grafana's Postgres data source produces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from grafana_sql import QueryContext, UnknownMacro, expand, interval_seconds

CTX = QueryContext(
    datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 1, 16, 30, 0, 250000, tzinfo=UTC),
    interval="5m",
    variables={"model": "driftloop-model"},
)


def test_time_filter_becomes_a_between_on_utc_timestamps() -> None:
    assert (
        expand("WHERE $__timeFilter(ts)", CTX)
        == "WHERE ts BETWEEN '2026-03-01T10:00:00.000Z' AND '2026-03-01T16:30:00.250Z'"
    )


def test_time_group_alias_buckets_epoch_seconds_by_the_interval() -> None:
    assert (
        expand("SELECT $__timeGroupAlias(ts, $__interval)", CTX)
        == 'SELECT floor(extract(epoch from ts)/300)*300 AS "time"'
    )
    assert expand("$__timeGroup(ts, '1h')", CTX) == "floor(extract(epoch from ts)/3600)*3600"


def test_time_bounds_and_variables() -> None:
    sql = "$__timeFrom() $__timeTo() '$model' ${model} $__interval_ms"
    assert expand(sql, CTX) == (
        "'2026-03-01T10:00:00.000Z' '2026-03-01T16:30:00.250Z' 'driftloop-model' driftloop-model 300000"
    )


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("'1d'", 86400)])
def test_intervals(text: str, seconds: int) -> None:
    assert interval_seconds(text) == seconds


@pytest.mark.parametrize(
    "sql", ["$__timeFiltr(ts)", "model_name = '$modle'", "$__timeGroup(ts)", "$__timeGroup(ts, soon)"]
)
def test_typos_fail_loudly(sql: str) -> None:
    with pytest.raises(UnknownMacro):
        expand(sql, CTX)
