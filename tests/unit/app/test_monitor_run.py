"""The monitor command's choices, without servers: the champion and reference checks, the inbox (its lock, what is
new), the files (the model's run under its lock, each named by its identity), the simulated stream and the run
key. The registry and the store are
fakes; the monitoring loop is replaced by one that records what it was asked to run."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from pipeline.app import monitor as monitor_module
from pipeline.app.monitor_result import MonitorResult
from pipeline.app.monitor_run import MonitorRefused, MonitorRequest, SimulatedStream, monitor_run
from pipeline.app.sources import inbox_run_key, model_run_key, run_key_for
from pipeline.domain.retrain_mode import RetrainMode
from pipeline.domain.schema import FeatureSchema
from pipeline.io.data import validate_frame
from pipeline.io.inbox import identify, list_inbox
from pipeline.model import serving
from pipeline.model.registry import NoChampion, VersionInfo
from pipeline.settings import Settings

NAME = "m"
SCHEMA = FeatureSchema(numerical=("x",), categorical=("c",), target="y", positive=1, negative=0)
NO_CHAMPION = f"model {NAME!r} has no champion: run `pipeline train --data PATH` or `pipeline adopt` first"


class FakeRegistry:
    def __init__(self, champion: VersionInfo | None, tags: dict[str, str] | None = None) -> None:
        self.name = NAME
        self._champion = champion
        self.tags = tags or {}

    def champion(self) -> VersionInfo | None:
        return self._champion

    def model_tags(self) -> dict[str, str]:
        return dict(self.tags)


class FakeStore:
    """The inbox's or the run's lock (held by this run or by another monitor), the batches recorded before and the
    files set aside."""

    def __init__(
        self, recorded: dict[int, dict] | None = None, lock_free: bool = True, rejected: list[dict] | None = None
    ) -> None:
        self.recorded = recorded or {}
        self.rejected = rejected or []
        self.lock_free = lock_free
        self.locked = False  # held by this run right now
        self.asked_recorded: list[str] = []
        self.locked_keys: list[str] = []

    @contextmanager
    def inbox_lock(self, model_name: str):
        assert model_name == NAME
        with self._held() as held:
            yield held

    @contextmanager
    def run_lock(self, run_key: str):
        self.locked_keys.append(run_key)
        with self._held() as held:
            yield held

    @contextmanager
    def _held(self):
        self.locked = self.lock_free
        try:
            yield self.lock_free
        finally:
            self.locked = False

    def recorded_batches(self, run_key: str) -> dict[int, dict]:
        self.asked_recorded.append(run_key)
        return self.recorded

    def rejected_batches(self, run_key: str) -> list[dict]:
        return [row for row in self.rejected if row["run_key"] == run_key]


class FakeHeartbeat:
    def __init__(self) -> None:
        self.beats: list[tuple[str, int]] = []

    def beat(self, model: str, batches: int) -> None:
        self.beats.append((model, batches))


class FakeParts:
    def __init__(self, registry: FakeRegistry, store: FakeStore) -> None:
        self.registry = registry
        self._store = store
        self.store_used = False
        self.prediction_log = None
        self.heartbeat: FakeHeartbeat | None = None

    @property
    def store(self) -> FakeStore:
        self.store_used = True
        return self._store

    def s3_for(self, *paths: str) -> None:
        assert not any(p.startswith("s3://") for p in paths)
        return None


class RecordingMonitor:
    """Stands in for the monitoring loop: remembers what it was given, returns an empty result."""

    runs: list[dict] = []

    def __init__(
        self, settings, schema, store, registry, *, say, prediction_log, engine, notifier=None, mode=None
    ) -> None:
        self.store = store
        self.schema = schema
        self.settings = settings
        self.mode = mode

    def run(
        self, reference, sources, run_key, *, threshold=None, on_batch=None, reference_fitted=True
    ) -> MonitorResult:
        RecordingMonitor.runs.append(
            {
                "reference": reference,
                "sources": [s.name for s in sources],
                "run_key": run_key,
                "threshold": threshold,
                "reference_fitted": reference_fitted,
                "schema": self.schema,
                "settings": self.settings,
                "mode": self.mode,
                "locked": getattr(self.store, "locked", None),
            }
        )
        return MonitorResult(run_key, records=[{"batch_index": i + 1} for i, _ in enumerate(sources)])


@pytest.fixture(autouse=True)
def recording_monitor(monkeypatch):
    RecordingMonitor.runs = []
    monkeypatch.setattr(monitor_module, "Monitor", RecordingMonitor)
    return RecordingMonitor.runs


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, model_name=NAME)  # type: ignore[call-arg]


def _champion(**tags: str) -> VersionInfo:
    return VersionInfo(version=1, run_id="r", tags=tags)


def _csv(path: Path, rows: int = 5, shift: float = 0.0) -> str:
    frame = pd.DataFrame(
        {"x": [i + shift for i in range(rows)], "c": ["a", "b"] * (rows // 2) + ["a"] * (rows % 2), "y": 1}
    )
    frame.loc[0, "y"] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return str(path)


def _run(settings, request: MonitorRequest, champion: VersionInfo | None = None, store: FakeStore | None = None):
    parts = FakeParts(FakeRegistry(champion if champion is not None else _champion()), store or FakeStore())
    request = dataclasses.replace(request, given_schema=request.given_schema or SCHEMA, given_source="--schema s")
    return monitor_run(request, settings, parts, say=lambda _message: None), parts  # type: ignore[arg-type]


def test_the_monitor_runs_with_the_model_s_own_policy_over_the_settings(settings, tmp_path, recording_monitor):
    parts = FakeParts(
        FakeRegistry(
            _champion(),
            tags={"policy.cooldown_batches": "7", "policy.drift_threshold": "0.3", "retrain_mode": "challenger"},
        ),
        FakeStore(),
    )
    said: list[str] = []
    request = MonitorRequest(paths=(_csv(tmp_path / "b.csv"),), reference=_csv(tmp_path / "r.csv"))
    request = dataclasses.replace(request, given_schema=SCHEMA, given_source="--schema s")
    monitor_run(request, settings, parts, say=said.append)  # type: ignore[arg-type]
    used = recording_monitor[0]["settings"]
    assert (used.cooldown_batches, used.drift_threshold) == (7, 0.3)
    assert recording_monitor[0]["mode"] == (RetrainMode.challenger, "model tag retrain_mode")
    assert (settings.cooldown_batches, settings.drift_threshold) != (7, 0.3)  # the settings' own defaults differ
    assert f"{NAME}: the model's own policy (its tags): drift_threshold=0.3, cooldown_batches=7" in said


def test_no_champion_is_the_one_line_error_and_touches_nothing_else(settings):
    parts = FakeParts(FakeRegistry(None), FakeStore())
    with pytest.raises(NoChampion) as raised:
        monitor_run(MonitorRequest(paths=("b.csv",)), settings, parts, say=print)  # type: ignore[arg-type]
    assert str(raised.value) == NO_CHAMPION
    assert not parts.store_used


def test_a_champion_without_stored_reference_and_no_reference_is_the_one_line_error(settings, tmp_path):
    batch = _csv(tmp_path / "b.csv")
    with pytest.raises(NoChampion) as raised:
        _run(settings, MonitorRequest(paths=(batch,)))
    assert str(raised.value) == f"v1 of {NAME!r} has no stored reference; pass --reference PATH"
    assert "\n" not in str(raised.value)


def test_the_stored_reference_is_used_and_names_the_run_key(settings, tmp_path, monkeypatch, recording_monitor):
    stored = validate_frame(pd.read_csv(_csv(tmp_path / "stored.csv")), SCHEMA, "stored")
    monkeypatch.setattr(serving, "recorded_reference", lambda info, schema, name: stored)
    batch = _csv(tmp_path / "b.csv")
    run, _ = _run(settings, MonitorRequest(paths=(batch,)), champion=_champion(reference_uri="runs:/r/ref.parquet"))
    assert recording_monitor[0]["reference"] is stored
    assert recording_monitor[0]["reference_fitted"]  # the training window's sample: the champion was fitted on it
    assert run.run_key == model_run_key(NAME)
    _run(
        settings,
        MonitorRequest(paths=(batch,)),
        champion=_champion(reference_uri="runs:/r/reference_batch_004.parquet", reference_fitted="false"),
    )
    assert not recording_monitor[1]["reference_fitted"]  # a batch the monitor made the reference, never fitted on


def test_files_without_a_key_go_on_in_the_model_s_run_each_named_by_its_identity_under_the_lock(
    settings, tmp_path, recording_monitor
):
    reference, first, second = (_csv(tmp_path / f"{n}.csv") for n in ("ref", "b1", "b2"))
    store = FakeStore()
    once, _ = _run(settings, MonitorRequest(paths=(first, second), reference=reference, threshold=0.2), store=store)
    later, _ = _run(settings, MonitorRequest(paths=(second,), reference=first), store=store)  # another reference
    assert once.run_key == later.run_key == recording_monitor[0]["run_key"] == model_run_key(NAME)
    assert model_run_key(NAME) != model_run_key("other") and model_run_key(NAME).startswith("model-")
    assert recording_monitor[0]["sources"] == [identify(first, None).identity, identify(second, None).identity]
    assert recording_monitor[0]["sources"][0].startswith(first + "#")
    assert recording_monitor[0]["threshold"] == 0.2 and recording_monitor[0]["locked"] is True and not store.locked
    assert store.locked_keys == [model_run_key(NAME)] * 2
    _csv(tmp_path / "b2.csv", rows=7)  # the same name, other content: another batch
    _run(settings, MonitorRequest(paths=(second,), reference=reference), store=store)
    assert recording_monitor[2]["sources"] != recording_monitor[1]["sources"]
    given, _ = _run(settings, MonitorRequest(paths=(first,), reference=reference, run_key="mine"))
    assert given.run_key == "mine"


def test_a_file_that_is_not_there_keeps_its_path_as_its_name_and_fails_in_its_turn(
    settings, tmp_path, recording_monitor
):
    missing = str(tmp_path / "gone.csv")
    _run(settings, MonitorRequest(paths=(missing,), reference=_csv(tmp_path / "ref.csv")))
    assert recording_monitor[0]["sources"] == [missing]


def test_files_given_while_another_monitor_goes_on_with_the_run_are_refused(settings, tmp_path, recording_monitor):
    store = FakeStore(lock_free=False)
    with pytest.raises(MonitorRefused, match=f"another monitor is going on with run {model_run_key(NAME)} of {NAME}"):
        _run(
            settings, MonitorRequest(paths=(_csv(tmp_path / "b.csv"),), reference=_csv(tmp_path / "r.csv")), store=store
        )
    assert recording_monitor == []


def test_the_inbox_held_by_another_monitor_is_nothing_to_do(settings, tmp_path, recording_monitor):
    _csv(tmp_path / "inbox" / "a.csv")
    store = FakeStore(lock_free=False)
    run, _ = _run(
        settings, MonitorRequest(inbox=str(tmp_path / "inbox"), reference=_csv(tmp_path / "ref.csv")), store=store
    )
    assert run.result is None
    assert run.nothing == f"another monitor is processing the inbox of {NAME}; nothing to do"
    assert run.run_key == inbox_run_key(NAME, str(tmp_path / "inbox"))
    assert store.asked_recorded == [] and recording_monitor == []


def test_an_inbox_with_nothing_new_does_nothing_and_lets_go_of_the_lock(settings, tmp_path, recording_monitor):
    inbox = tmp_path / "inbox"
    _csv(inbox / "a.csv")
    (item,) = list_inbox(str(inbox), None)
    store = FakeStore(recorded={1: {"source": item.identity}})
    run, _ = _run(settings, MonitorRequest(inbox=str(inbox)), store=store)  # no reference needed for nothing
    assert run.result is None and run.nothing == f"{inbox}: nothing new (1 batches recorded)"
    assert recording_monitor == [] and not store.locked


def test_an_inbox_s_new_files_are_monitored_in_the_inbox_s_run_under_the_lock(settings, tmp_path, recording_monitor):
    inbox = tmp_path / "inbox"
    _csv(inbox / "a.csv")
    (old,) = list_inbox(str(inbox), None)
    _csv(inbox / "b.csv", shift=1.0)
    _csv(inbox / "c.csv", shift=2.0)
    store = FakeStore(recorded={1: {"source": "elsewhere#1"}, 2: {"source": old.identity}})
    run, _ = _run(settings, MonitorRequest(inbox=str(inbox), reference=_csv(tmp_path / "ref.csv")), store=store)
    seen = recording_monitor[0]
    assert [Path(name.split("#")[0]).name for name in seen["sources"]] == ["b.csv", "c.csv"]
    assert seen["locked"] is True and not store.locked
    assert run.run_key == seen["run_key"] == inbox_run_key(NAME, str(inbox)) == store.asked_recorded[0]
    assert run.result is not None


def test_an_inbox_s_files_set_aside_are_not_read_again_and_a_new_content_is(settings, tmp_path, recording_monitor):
    inbox = tmp_path / "inbox"
    _csv(inbox / "a.csv")
    _csv(inbox / "b.csv", shift=1.0)
    bad, good = list_inbox(str(inbox), None)
    key = inbox_run_key(NAME, str(inbox))
    aside = [
        {"run_key": key, "uri": bad.uri, "etag": bad.etag},
        {"run_key": "other", "uri": good.uri, "etag": good.etag},
    ]
    store = FakeStore(recorded={1: {"source": good.identity}}, rejected=aside)
    run, _ = _run(settings, MonitorRequest(inbox=str(inbox)), store=store)
    assert run.result is None
    assert (
        run.nothing
        == f"{inbox}: nothing new (1 batches recorded); 1 set aside as rejected (`pipeline status` lists them)"
    )
    _csv(inbox / "a.csv", rows=7)  # the file fixed in place: new content, a new ETag
    _run(settings, MonitorRequest(inbox=str(inbox), reference=_csv(tmp_path / "ref.csv")), store=store)
    assert [Path(name.split("#")[0]).name for name in recording_monitor[0]["sources"]] == ["a.csv"]
    assert recording_monitor[0]["sources"][0] != bad.identity


def test_the_simulated_stream_is_built_from_the_reference_and_keyed_by_its_parameters(
    settings, tmp_path, real_sample_path, recording_monitor
):
    built = []

    def build(frame, schema):
        built.append((len(frame), schema))
        return []

    reference = str(real_sample_path)
    parts = FakeParts(FakeRegistry(_champion()), FakeStore())
    one = monitor_run(
        MonitorRequest(reference=reference, simulated=SimulatedStream(build, "sim:4")),
        settings,
        parts,  # type: ignore[arg-type]
        say=print,
    )
    two = monitor_run(
        MonitorRequest(reference=reference, simulated=SimulatedStream(build, "sim:5")),
        settings,
        parts,  # type: ignore[arg-type]
        say=print,
    )
    assert built[0][0] == 100 and built[0][1] == recording_monitor[0]["schema"]
    assert one.run_key == run_key_for(NAME, reference, [], "sim:4") != two.run_key


def test_the_simulated_stream_is_refused_with_another_schema_and_nothing_at_all_is_refused(settings, tmp_path):
    stream = SimulatedStream(lambda frame, schema: [], "sim")
    with pytest.raises(MonitorRefused, match="the simulated stream is the demo's"):
        _run(settings, MonitorRequest(reference=_csv(tmp_path / "ref.csv"), simulated=stream))
    with pytest.raises(MonitorRefused, match="nothing to monitor"):
        _run(settings, MonitorRequest(reference=_csv(tmp_path / "ref.csv")))


def test_a_reference_over_the_caps_is_refused_naming_the_setting(tmp_path, recording_monitor):
    from pipeline.io.tables import DataError

    settings = Settings(_env_file=None, model_name=NAME, max_rows=4)  # type: ignore[call-arg]
    request = MonitorRequest(paths=(_csv(tmp_path / "b.csv", rows=4),), reference=_csv(tmp_path / "r.csv", rows=5))
    with pytest.raises(DataError, match=r"r\.csv: 5 rows, over the limit of 4 \(PIPELINE_MAX_ROWS\)"):
        _run(settings, request)
    assert not recording_monitor


def test_a_run_that_recorded_batches_beats_once_with_their_number_and_an_idle_inbox_does_not(settings, tmp_path):
    inbox = tmp_path / "inbox"
    _csv(inbox / "a.csv")
    _csv(inbox / "b.csv", shift=1.0)
    parts = FakeParts(FakeRegistry(_champion()), FakeStore())
    parts.heartbeat = FakeHeartbeat()
    request = MonitorRequest(
        inbox=str(inbox), reference=_csv(tmp_path / "ref.csv"), given_schema=SCHEMA, given_source="--schema s"
    )
    monitor_run(request, settings, parts, say=lambda _message: None)  # type: ignore[arg-type]
    assert parts.heartbeat.beats == [(NAME, 2)]
    recorded = {i + 1: {"source": item.identity} for i, item in enumerate(list_inbox(str(inbox), None))}
    idle = FakeParts(FakeRegistry(_champion()), FakeStore(recorded=recorded))
    idle.heartbeat = FakeHeartbeat()
    run = monitor_run(request, settings, idle, say=lambda _message: None)  # type: ignore[arg-type]
    assert run.result is None and idle.heartbeat.beats == []  # nothing recorded: the alarm's missing data
