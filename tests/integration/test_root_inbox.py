"""One deployment, many models: a root inbox whose folders are two models of different schemas and a folder of no
model, monitored by one `pipeline monitor --inbox ROOT --all-models`."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from loans import write_loans
from test_own_model import infer, invoke, rows

from pipeline.app.sources import inbox_run_key
from pipeline.domain.schema import read_schema

pytestmark = pytest.mark.integration

BUCKET = "root-inbox-bucket"


def recorded(dsn: str, model: str) -> list[tuple]:
    query = "SELECT source, run_key FROM batch_metrics WHERE model_name = %s ORDER BY batch_index"
    return rows(dsn, query, model)


def test_a_root_inbox_monitors_each_model_with_its_own_schema_and_one_without_champion_is_one_line(
    settings, servers, tmp_path
):
    tag = uuid.uuid4().hex[:6]
    loans, plain, nobody = f"loans-{tag}", f"plain-{tag}", f"nobody-{tag}"
    # Two tables of one kind with different schemas: text labels and every column; 0/1 labels without product.
    texts = write_loans(tmp_path / "texts", reference_rows=600, batches=1, rows=200, shift_at=None, text_labels=True)
    numbers = write_loans(tmp_path / "numbers", reference_rows=600, batches=1, rows=200, shift_at=None, seed=5)
    for path in (numbers.reference, *numbers.batches):
        pd.read_csv(path).drop(columns=["product"]).to_csv(path, index=False)
    infer(texts, tmp_path / "texts.json", "default")
    infer(numbers, tmp_path / "numbers.json", "1")
    assert "product" in read_schema(tmp_path / "texts.json").features
    assert "product" not in read_schema(tmp_path / "numbers.json").features
    invoke("train", "--data", str(texts.reference), "--schema", str(tmp_path / "texts.json"), "--model-name", loans)
    invoke("train", "--data", str(numbers.reference), "--schema", str(tmp_path / "numbers.json"), "--model-name", plain)

    s3 = servers.s3()
    s3.create_bucket(Bucket=BUCKET)
    root = f"s3://{BUCKET}/inbox-{tag}/"
    for name, batch in ((loans, texts.batches[0]), (plain, numbers.batches[0]), (nobody, numbers.batches[0])):
        s3.upload_file(str(batch), BUCKET, f"inbox-{tag}/{name}/2026-12-01.csv")

    out = " ".join(invoke("monitor", "--inbox", root, "--all-models", code=1).split())
    dsn = settings.metrics_db_url
    for name in (loans, plain):
        inbox = f"{root}{name}/"
        ((source, run_key),) = recorded(dsn, name)
        assert source.startswith(f"{inbox}2026-12-01.csv#")
        assert run_key == inbox_run_key(name, inbox)  # the run that `--inbox ROOT/NAME/` goes on with
    assert recorded(dsn, nobody) == []
    assert f"model {nobody}: not monitored: model '{nobody}' has no champion" in out
    assert "3 model(s): 2 monitored, 0 with nothing to do, 1 not monitored" in out

    # Each model's own inbox, monitored alone, is the same run: nothing new there.
    alone = " ".join(invoke("monitor", "--inbox", f"{root}{plain}/", "--model-name", plain).split())
    assert "nothing new (1 batches recorded)" in alone
    again = " ".join(invoke("monitor", "--inbox", root, "--all-models", code=1).split())
    assert again.count("nothing new (1 batches recorded)") == 2
    assert [len(recorded(dsn, name)) for name in (loans, plain)] == [1, 1]
