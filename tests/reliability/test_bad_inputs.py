"""Bad input through the real CLI: one monitor run over every kind of broken batch, each followed by a good
one. Each bad batch gives one line naming the file (and column or value), writes nothing, and the run goes
on with the next batch and says so; the run exits non-zero. Warnings (extra columns, unseen levels, a lab
column with no value) are not errors: those batches are scored and written."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2
import pytest
from reliability_rig import Case, copy_champion, create_database, env_for, invoke

from pipeline.domain.schema import load_schema
from pipeline.io.data import empty_columns, load_batch, validate_frame
from pipeline.io.tables import DataError
from pipeline.settings import Settings

pytestmark = pytest.mark.reliability

MAX_MB = 1.0
INPUT_BUCKET = "rel-inputs"
LOCKED_BUCKET = "rel-locked"


@dataclass(frozen=True)
class Bad:
    name: str
    source: str
    expected: str  # the one-line message, after "<source>: "


def good_frame(case: Case) -> pd.DataFrame:
    return pd.read_csv(case.data.batches[0])


def write_bad_inputs(case: Case, folder: Path, s3) -> list[Bad]:
    frame = good_frame(case)
    bad: list[Bad] = []

    def csv(name: str, table: pd.DataFrame) -> str:
        path = folder / name
        table.to_csv(path, index=False)
        return str(path)

    def raw(name: str, payload: bytes) -> str:
        path = folder / name
        path.write_bytes(payload)
        return str(path)

    bad.append(
        Bad(
            "missing columns",
            csv("missing.csv", frame.drop(columns=["age", "esi"])),
            "missing feature columns: age, esi",
        )
    )
    text = frame.astype({"triage_vital_hr": object})
    text.loc[7, "triage_vital_hr"] = "tachy"
    bad.append(
        Bad(
            "text in a numeric column",
            csv("text.csv", text),
            "column 'triage_vital_hr' holds non-numeric value 'tachy'",
        )
    )
    bad.append(
        Bad(
            "required column entirely empty",
            csv("empty_age.csv", frame.assign(age=np.nan)),
            "column 'age' is entirely empty; it is never empty in the reference",
        )
    )
    bad.append(Bad("empty file", raw("empty.csv", b""), "empty file"))
    bad.append(
        Bad(
            "header only",
            raw("header.csv", (",".join(f'"{c}"' for c in frame.columns) + "\n").encode()),
            "no rows (header only or empty)",
        )
    )
    bad.append(
        Bad(
            "not CSV or Parquet",
            raw("batch.json", b'{"age": 40}'),
            "unsupported file type '.json'; use .csv or .parquet",
        )
    )
    bad.append(
        Bad(
            "Parquet that is not Parquet",
            raw("batch.parquet", b"age,esi\n40,3\n"),
            "not a readable Parquet file",
        )
    )
    latin = frame.astype({"gender": object})
    latin.loc[0, "gender"] = "f\xe9minin"
    latin_path = folder / "latin1.csv"
    latin_path.write_bytes(latin.to_csv(index=False).encode("latin-1"))
    bad.append(Bad("non-UTF-8 bytes", str(latin_path), "not UTF-8 text (byte"))
    target = frame.copy()
    target.loc[3, "disposition"] = "transfer"
    bad.append(
        Bad(
            "target outside admit/discharge",
            csv("target.csv", target),
            "target 'disposition' holds 'transfer'; expected 'admit' or 'discharge'",
        )
    )
    dup = folder / "dup.csv"
    header = list(frame.columns) + ["esi"]
    dup.write_text(
        ",".join(f'"{c}"' for c in header)
        + "\n"
        + "\n".join(",".join(map(str, row)) + ",3" for row in frame.fillna("").astype(str).to_numpy().tolist())
        + "\n"
    )
    bad.append(Bad("duplicated column names", str(dup), "duplicated column names: esi"))
    big = pd.concat([frame] * 8, ignore_index=True)
    big_path = csv("big.csv", big)
    assert Path(big_path).stat().st_size > MAX_MB * 1024 * 1024
    bad.append(Bad("bigger than the batch limit", big_path, f"MB is over the batch limit of {MAX_MB:g} MB"))
    bad.append(Bad("local file that does not exist", str(folder / "nowhere.csv"), "no such file"))
    bad.append(
        Bad(
            "s3 key that does not exist",
            f"s3://{INPUT_BUCKET}/missing/batch.csv",
            f"no such key in bucket {INPUT_BUCKET}",
        )
    )
    bad.append(
        Bad(
            "bucket without permission",
            f"s3://{LOCKED_BUCKET}/batch.csv",
            f"access denied to bucket {LOCKED_BUCKET}",
        )
    )
    return bad


def write_warnings(case: Case, folder: Path) -> dict[str, str]:
    frame = good_frame(case)
    extra = frame.assign(note="free text", ward="A")
    unseen = frame.copy()
    unseen.loc[:20, "arrivalmode"] = "helicopter"
    lab = frame.assign(albumin_last=np.nan, albumin_max=np.nan)
    paths = {
        "extra": folder / "extra_1.csv",
        "extra again": folder / "extra_2.csv",
        "unseen": folder / "unseen.csv",
        "empty lab": folder / "empty_lab.csv",
    }
    for key, table in (("extra", extra), ("extra again", extra), ("unseen", unseen), ("empty lab", lab)):
        table.to_csv(paths[key], index=False)
    return {key: str(path) for key, path in paths.items()}


@dataclass(frozen=True)
class BadRun:
    case: Case
    bad: list[Bad]
    warnings: dict[str, str]
    sources: list[str]
    records: list[dict]
    output: str
    exit_code: int

    def index_of(self, source: str) -> int:
        return self.sources.index(source) + 1

    def recorded(self) -> list[int]:
        return [b for (b,) in self.case.rows("SELECT batch_index FROM batch_metrics ORDER BY batch_index")]


@pytest.fixture(scope="module")
def bad_run(rig, data, base_champion, pg_stack, tmp_path_factory) -> BadRun:
    """The one monitor run this module inspects (module-scoped: the monitor runs once for every case)."""
    folder = tmp_path_factory.mktemp("bad")
    name = f"rel-bad-{uuid.uuid4().hex[:6]}"
    copy_champion(rig.tracking_uri, *base_champion, name)
    dsn = create_database(pg_stack, f"rel_bad_{uuid.uuid4().hex[:8]}")
    env = env_for(rig, dsn, name, PIPELINE_DRIFTED_SHARE_THRESHOLD="1", PIPELINE_AUC_TOLERANCE="1")
    s3 = rig.s3()
    for bucket in (INPUT_BUCKET, LOCKED_BUCKET):
        s3.create_bucket(Bucket=bucket)
    good = data.batches[0].read_bytes()
    s3.put_object(Bucket=LOCKED_BUCKET, Key="batch.csv", Body=good)
    s3.put_bucket_policy(
        Bucket=LOCKED_BUCKET,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{LOCKED_BUCKET}/*",
                    }
                ],
            }
        ),
    )
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        case = Case(Settings(_env_file=None), env, dsn, name, data)
        bad = write_bad_inputs(case, folder, s3)
        warnings = write_warnings(case, folder)
        sources = [str(data.batches[0])]
        for i, item in enumerate(bad):
            # a good batch after each bad one, each its own object (a file given twice in a run is read once)
            s3.put_object(Bucket=INPUT_BUCKET, Key=f"good/batch_{i:02d}.csv", Body=good)
            sources += [item.source, f"s3://{INPUT_BUCKET}/good/batch_{i:02d}.csv"]
        sources += list(warnings.values())
        report = folder / "report.json"
        result = invoke(
            "monitor",
            "--reference",
            str(data.reference),
            "--threshold",
            "10",
            "--max-batch-mb",
            str(MAX_MB),
            "--report-json",
            str(report),
            "--current",
            *sources,
            expect=None,
        )
    return BadRun(case, bad, warnings, sources, json.loads(report.read_text()), result.output, result.exit_code)


BAD_CASES = [
    "missing columns",
    "text in a numeric column",
    "required column entirely empty",
    "empty file",
    "header only",
    "not CSV or Parquet",
    "Parquet that is not Parquet",
    "non-UTF-8 bytes",
    "target outside admit/discharge",
    "duplicated column names",
    "bigger than the batch limit",
    "local file that does not exist",
    "s3 key that does not exist",
    "bucket without permission",
]


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_batch_is_one_line_nothing_written_and_the_run_goes_on(bad_run: BadRun, name: str):
    item = next(b for b in bad_run.bad if b.name == name)
    index = bad_run.index_of(item.source)
    record = bad_run.records[index - 1]
    assert record["error"].startswith(f"{item.source}: ") and item.expected in record["error"]
    assert "\n" not in record["error"]
    assert f"[batch {index}] skipped, nothing written, the run goes on: {record['error']}" in bad_run.output
    recorded = bad_run.recorded()
    assert index not in recorded
    assert index + 1 in recorded and bad_run.records[index]["action"] == "none"  # the next batch was done
    assert bad_run.case.rows("SELECT count(*) FROM events WHERE batch_index = %s", index) == [(0,)]


def test_the_run_with_bad_batches_exits_non_zero_and_counts_them(bad_run: BadRun):
    assert bad_run.exit_code == 1
    assert f"{len(bad_run.bad)} batch(es) failed validation; nothing was written for them" in bad_run.output
    good = len(bad_run.sources) - len(bad_run.bad)
    assert bad_run.case.rows("SELECT count(*), count(DISTINCT batch_index) FROM batch_metrics") == [(good, good)]


def test_extra_columns_are_ignored_and_reported_once(bad_run: BadRun):
    for key in ("extra", "extra again"):
        assert bad_run.index_of(bad_run.warnings[key]) in bad_run.recorded()
    said = re.findall(r"ignoring \d+ extra columns \(said once per run\): note, ward", bad_run.output)
    assert len(said) == 1


def test_unseen_category_levels_are_scored_and_counted_not_refused(bad_run: BadRun):
    index = bad_run.index_of(bad_run.warnings["unseen"])
    record = bad_run.records[index - 1]
    assert "error" not in record and record["unseen_categories"] >= 1
    assert bad_run.case.rows("SELECT unseen_categories FROM batch_metrics WHERE batch_index = %s", index)[0][0] >= 1


def test_a_lab_column_with_no_value_is_a_warning_not_an_error(bad_run: BadRun):
    index = bad_run.index_of(bad_run.warnings["empty lab"])
    assert index in bad_run.recorded()
    assert re.search(rf"\[batch {index}\] warning: \d+ columns entirely empty, allowed .*albumin_last", bad_run.output)


def test_the_empty_column_rule_follows_the_reference(data):
    """The rule itself: empty is an error only for a column the reference always fills."""
    schema = load_schema()
    reference = load_batch(str(data.reference), schema).frame
    always = [c for c in schema.features if reference[c].notna().all()]
    sometimes = [c for c in schema.features if reference[c].isna().any()]
    assert "age" in always and "albumin_last" in sometimes
    frame = pd.read_csv(data.batches[0])
    assert (
        empty_columns(
            validate_frame(frame.assign(**{c: np.nan for c in sometimes}), schema, "b.csv"), reference, schema
        )
        == sometimes
    )
    for column in always[:5]:
        with pytest.raises(DataError, match=rf"b\.csv: column '{re.escape(column)}' is entirely empty"):
            empty_columns(validate_frame(frame.assign(**{column: np.nan}), schema, "b.csv"), reference, schema)


def test_nothing_half_written_for_bad_batches(bad_run: BadRun):
    """Every recorded batch has its full row; the run has no row for any failed index, no orphan event."""
    with psycopg2.connect(bad_run.case.dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM events e LEFT JOIN batch_metrics b USING (run_key, batch_index) "
            "WHERE e.batch_index >= 0 AND b.run_key IS NULL"
        )
        assert cur.fetchone() == (0,)
