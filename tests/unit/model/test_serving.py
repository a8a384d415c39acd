"""What a version's tags may point at: only artifacts of the registry's own runs and versions are read."""

from __future__ import annotations

import socket

import pytest

from pipeline.model.registry import VersionInfo
from pipeline.model.serving import TAG_CALIBRATION, TAG_REFERENCE, UntrustedUri, recorded_calibration, stored_uri

RUN = "0123456789abcdef" * 2  # a run id: 32 hex digits


def version(**tags: str) -> VersionInfo:
    return VersionInfo(version=3, run_id=RUN, tags=tags)


@pytest.mark.parametrize(
    "uri",
    [
        f"runs:/{RUN}/reference.parquet",
        f"runs:/{RUN}/reports/reference_batch_004.parquet",
        "models:/loans/3/calibration.parquet",
        "models:/loans@champion",
    ],
)
def test_artifacts_of_the_registrys_own_runs_are_read(uri):
    assert stored_uri(version(reference_uri=uri), TAG_REFERENCE) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:9/x",
        "https://example.com/reference.parquet",
        "s3://someone-elses-bucket/reference.parquet",
        "file:///etc/passwd",
        "/etc/passwd",
        f"runs:/{RUN}/../../etc/passwd",
        f"runs:/{RUN}//etc/passwd",
        "runs:/not-a-run-id/reference.parquet",
        "models:/loans/3/../../x",
        "garbage",
    ],
)
def test_anything_else_is_refused_in_one_line_naming_the_tag(uri):
    with pytest.raises(UntrustedUri) as refused:
        stored_uri(version(reference_uri=uri), TAG_REFERENCE)
    message = str(refused.value)
    assert "reference_uri=" in message and "v3" in message and "\n" not in message


def test_a_refused_tag_makes_no_connection(monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    monkeypatch.setattr(socket.socket, "connect", no_connection)
    with pytest.raises(UntrustedUri):
        recorded_calibration(version(**{TAG_CALIBRATION: "http://127.0.0.1:9/x"}))


def test_a_version_without_the_tag_has_none():
    assert stored_uri(version(), TAG_REFERENCE) is None


def test_the_demo_schema_standing_in_for_none_is_said():
    from types import SimpleNamespace

    from pipeline.domain.schema import builtin_schema
    from pipeline.model.serving import schema_for

    said: list[str] = []
    registry = SimpleNamespace(name="churn")
    assert schema_for(registry, None, None, "", said.append) == builtin_schema()  # type: ignore[arg-type]
    assert said == [
        "schema: none given (--schema, PIPELINE_SCHEMA_PATH) and none recorded with churn: the built-in demo schema "
        "(emergency-department triage) is used; pass --schema for your own table"
    ]
    given = builtin_schema()
    said.clear()
    schema_for(registry, None, given, "--schema x", said.append)  # type: ignore[arg-type]
    assert said == []
