"""``pipeline data synth`` and ``pipeline schema infer``: synthetic batches, and a first draft of a schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import data_app, schema_app
from pipeline.cli.common import clean_errors, cli_settings, collaborators, fail, say


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Folder for reference.csv and batch_NNN.csv.")] = Path("data/synth"),
    rows: Annotated[int, typer.Option(min=50, help="Rows per batch.")] = 2000,
    batches: Annotated[int, typer.Option(min=1, help="Number of batches.")] = 12,
    reference_rows: Annotated[int, typer.Option(min=100, help="Rows in reference.csv.")] = 6000,
    drift_at: Annotated[int | None, typer.Option(min=1, help="First drifted batch (1-based).")] = None,
    drift_kind: Annotated[str, typer.Option(help="none | covariate | concept | prior | label.")] = "covariate",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write the demo's synthetic rows (realistic marginals, ~1/3 positive), with drift from --drift-at on."""
    import numpy as np

    from pipeline.demo.synth import DriftKind, Population, generate_stream, load_sample_frame
    from pipeline.domain.schema import load_schema
    from pipeline.io.tables import write_table

    try:
        kind = DriftKind(drift_kind)
    except ValueError:
        fail(f"--drift-kind must be one of: {', '.join(k.value for k in DriftKind)}")
    if fmt not in ("csv", "parquet"):
        fail("--format must be csv or parquet")
    if drift_at is not None and drift_at > batches:
        fail(f"--drift-at {drift_at} is after the last batch ({batches})")
    from pipeline.domain.schema import is_builtin

    with clean_errors():
        configured = cli_settings().schema_path
        if configured is not None and not is_builtin(load_schema(configured)):
            fail(f"data synth makes the demo's rows only; PIPELINE_SCHEMA_PATH names another schema ({configured})")
    schema = load_schema()
    population = Population.fit(load_sample_frame(), schema)
    reference = population.sample_batch(reference_rows, np.random.default_rng(seed + 1))
    stream = generate_stream(population, rows=rows, batches=batches, drift_at=drift_at, kind=kind, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    write_table(reference, str(out / f"reference.{fmt}"))
    for index, frame in enumerate(stream, start=1):
        write_table(frame, str(out / f"batch_{index:03d}.{fmt}"))
    manifest = {
        "rows": rows,
        "batches": batches,
        "reference_rows": reference_rows,
        "drift_at": drift_at,
        "drift_kind": kind.value,
        "seed": seed,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    say(
        f"wrote reference ({reference_rows} rows) and {batches} batches of {rows} rows to {out} "
        f"(drift: {kind.value if drift_at else 'none'}{f' from batch {drift_at}' if drift_at else ''})"
    )


SCHEMA_INFER_HELP = (
    "Infer a feature schema from labelled data and write it as a first draft: the file is meant to be read and "
    "edited before it is used.\n\n"
    "Numbers become numerical features; text and booleans categorical. Integer-coded categories (census codes, "
    "ICD groups, region numbers) are numeric in the file and cannot be told apart from amounts: mark them with "
    "--categorical. Ids (non-float columns unique on every row), timestamps and empty columns are left out, each "
    "with a note saying how to keep it. Nothing is written when there is an error."
)


@schema_app.command("infer", help=SCHEMA_INFER_HELP)
def schema_infer(
    data: Annotated[str, typer.Option(help="Labelled data to infer from: CSV/Parquet path or s3://bucket/key.")],
    target: Annotated[str, typer.Option(help="The binary target column.")],
    positive: Annotated[
        str, typer.Option(help="The target value of the positive class, as in the data (e.g. 1, true, '>50K').")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the schema JSON (folders are created).")],
    categorical: Annotated[
        list[str] | None,
        typer.Option(metavar="A,B", help="Numeric columns that are codes, not amounts (comma-separated or repeated)."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(metavar="A,B", help="Columns to leave out (comma-separated or repeated).")
    ] = None,
    row_id: Annotated[
        str | None,
        typer.Option(
            "--id", metavar="COL", help="The column that identifies a row (not a feature): late labels join by it."
        ),
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(metavar="A,B", help="Categorical columns to monitor segment by segment (the schema's segments)."),
    ] = None,
) -> None:
    """A draft schema is quicker to check than to write, and the notes say why each column was left out."""
    from pipeline.domain.schema_infer import infer_schema, label_text, split_names
    from pipeline.io.tables import read_table

    settings = cli_settings()
    with clean_errors():
        frame = read_table(data, collaborators(settings).s3_for(data))
        columns = [str(name) for name in frame.columns]
        schema, notes = infer_schema(
            frame,
            target=target,
            positive=positive,
            categorical=split_names(categorical or [], columns),
            ignore=split_names(ignore or [], columns),
            row_id=row_id.strip() if row_id else None,
            source=data,
            segments=split_names(segment or [], columns),
        )
    if out.is_dir():
        fail(f"{out}: is a directory; --out needs a file path")
    for note in notes:
        say(f"note: {note}")
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(schema.to_json(), encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        fail(f"{out}: cannot write the schema ({err.strerror or err})")
    say(
        f"wrote {out}: {len(schema.numerical)} numerical, {len(schema.categorical)} categorical, "
        f"target {schema.target}: positive {label_text(schema.positive)}, negative {label_text(schema.negative)}"
    )
