"""A root inbox's models, one after the other, without servers: each model's folder monitored as its own inbox with
its own settings; a model that cannot be monitored is one line and the others go on; an outage stops the run; the
exit code is the most serious of the models'. The run of one model is a fake that answers per model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.app.monitor_models import ModelOutcome, exit_code, summary
from pipeline.app.monitor_models import monitor_models as monitor_all
from pipeline.app.monitor_result import MonitorResult
from pipeline.app.monitor_run import MonitorRefused, MonitorRequest, MonitorRun
from pipeline.domain.schema import FeatureSchema
from pipeline.io.store import StoreUnavailable
from pipeline.model.registry import NoChampion
from pipeline.model.tracking import TrackingUnavailable
from pipeline.settings import Settings


class FakeParts:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.made: list[str] = []

    def for_model(self, name: str) -> FakeParts:
        self.made.append(name)
        return FakeParts(self.settings.model_copy(update={"model_name": name}))

    def s3_for(self, *paths: str) -> None:
        return None


class FakeRuns:
    """Each model's answer: a ``MonitorRun`` to return or an exception to raise; what each was asked."""

    def __init__(self, answers: dict[str, MonitorRun | Exception]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str, str]] = []  # (inbox, settings' model, parts' model)

    def __call__(self, request: MonitorRequest, settings: Settings, parts) -> MonitorRun:
        self.asked.append((str(request.inbox), settings.model_name, parts.settings.model_name))
        answer = self.answers[settings.model_name]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _root(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / "stray.csv").write_text("x\n1\n")
    return tmp_path


def _ran(key: str, **result) -> MonitorRun:
    return MonitorRun(key, MonitorResult(key, **result))


SCHEMA = FeatureSchema(numerical=("x",), categorical=(), target="y", positive=1, negative=0)


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, model_name="from-the-settings")


def test_every_model_folder_is_monitored_in_name_order_as_its_own_inbox_with_its_own_settings(settings, tmp_path):
    root = _root(tmp_path, "loans", "churn")
    runs = FakeRuns({"churn": _ran("inbox-c"), "loans": MonitorRun("inbox-l", nothing="nothing new")})
    said: list[str] = []
    parts = FakeParts(settings)
    outcomes = monitor_all(MonitorRequest(inbox=str(root)), parts, run_one=runs, say=said.append)
    assert runs.asked == [
        (str(root / "churn"), "churn", "churn"),
        (str(root / "loans"), "loans", "loans"),
    ]
    assert parts.made == ["churn", "loans"] and settings.model_name == "from-the-settings"
    assert [outcome.model for outcome in outcomes] == ["churn", "loans"]
    assert not any(outcome.failed for outcome in outcomes)
    assert said[0] == f"{root}: 2 model folder(s): churn, loans"
    assert summary(outcomes) == "2 model(s): 1 monitored, 1 with nothing to do, 0 not monitored"
    assert exit_code(outcomes) == 0


def test_a_model_that_cannot_be_monitored_is_one_line_and_the_next_goes_on(settings, tmp_path):
    root = _root(tmp_path, "a-model", "b-stray", "c-model")
    runs = FakeRuns(
        {
            "a-model": _ran("inbox-a"),
            "b-stray": NoChampion("model 'b-stray' has no champion:\nrun `pipeline train` first"),
            "c-model": _ran("inbox-c"),
        }
    )
    said: list[str] = []
    outcomes = monitor_all(MonitorRequest(inbox=str(root)), FakeParts(settings), run_one=runs, say=said.append)
    assert [asked[1] for asked in runs.asked] == ["a-model", "b-stray", "c-model"]
    failed = outcomes[1].failed
    assert failed.startswith("model b-stray: not monitored: model 'b-stray' has no champion") and "\n" not in failed
    assert failed in said
    assert outcomes[0].run is not None and outcomes[2].run is not None
    assert summary(outcomes) == "3 model(s): 2 monitored, 0 with nothing to do, 1 not monitored (b-stray)"
    assert exit_code(outcomes) == 1 and exit_code(outcomes, fail_on_alarm=True) == 1


def _raised_from(err: Exception, cause: Exception) -> Exception:
    err.__cause__ = cause
    return err


@pytest.mark.parametrize(
    "outage",
    [
        StoreUnavailable("the metrics database is unreachable"),
        TrackingUnavailable("MLflow tracking server is unreachable"),
        _raised_from(ValueError("while loading"), ConnectionRefusedError("connection refused")),
    ],
)
def test_an_outage_stops_the_run_at_that_model_and_is_raised(settings, tmp_path, outage):
    root = _root(tmp_path, "a", "b", "c")
    runs = FakeRuns({"a": _ran("inbox-a"), "b": outage, "c": _ran("inbox-c")})
    said: list[str] = []
    with pytest.raises(type(outage)):
        monitor_all(MonitorRequest(inbox=str(root)), FakeParts(settings), run_one=runs, say=said.append)
    assert [asked[1] for asked in runs.asked] == ["a", "b"]
    assert said[-1].startswith("model b: stopped: ") and said[-1].endswith("; not monitored: c")


def test_any_other_error_of_one_model_is_its_own(settings, tmp_path):
    root = _root(tmp_path, "a", "b")
    runs = FakeRuns({"a": KeyError("schema_uri"), "b": _ran("inbox-b")})
    outcomes = monitor_all(MonitorRequest(inbox=str(root)), FakeParts(settings), run_one=runs, say=lambda _: None)
    assert outcomes[0].failed == "model a: not monitored: 'schema_uri'"
    assert outcomes[1].run is not None


def test_a_root_without_model_folders_is_refused(settings, tmp_path):
    (tmp_path / "stray.csv").write_text("x\n1\n")
    with pytest.raises(MonitorRefused, match="no model folders"):
        monitor_all(MonitorRequest(inbox=str(tmp_path)), FakeParts(settings), run_one=FakeRuns({}), say=print)


@pytest.mark.parametrize(
    ("request_", "named"),
    [
        (MonitorRequest(), "pass it with --inbox"),
        (MonitorRequest(inbox="r", reference="ref.csv"), "--reference names one model's"),
        (MonitorRequest(inbox="r", run_key="k"), "--run-id names one model's"),
        (
            MonitorRequest(
                inbox="r",
                given_schema=FeatureSchema(numerical=("x",), categorical=(), target="y", positive=1, negative=0),
            ),
            "--schema or PIPELINE_SCHEMA_PATH names one model's",
        ),
    ],
)
def test_what_names_one_model_s_run_is_refused_before_any_model(settings, request_, named):
    runs = FakeRuns({})
    with pytest.raises(MonitorRefused, match=named):
        monitor_all(request_, FakeParts(settings), run_one=runs, say=print)
    assert runs.asked == []


def _outcome(result: dict) -> ModelOutcome:
    return ModelOutcome("m", _ran("k", **result))


ALARMED = {"records": [{"drift_detected": True}]}


@pytest.mark.parametrize(
    ("outcomes", "without", "with_"),
    [
        ([], 0, 0),
        ([ModelOutcome("m", MonitorRun("k", nothing="nothing new"))], 0, 0),
        ([_outcome(ALARMED), _outcome({})], 0, 3),
        ([_outcome(ALARMED), _outcome({"errors": ["bad.csv: x"]})], 1, 4),
        ([_outcome({"errors": ["bad.csv: x"]}), ModelOutcome("n", failed="model n: not monitored: x")], 1, 1),
        ([_outcome(ALARMED), _outcome({"failures": ["retrain failed"]})], 1, 1),
    ],
)
def test_the_exit_code_is_the_most_serious_of_the_models(outcomes, without, with_):
    assert exit_code(outcomes) == without
    assert exit_code(outcomes, fail_on_alarm=True) == with_
