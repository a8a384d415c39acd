import gc
import sys

import pytest

from pipeline import __main__ as entry


@pytest.fixture
def restored_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_command_collects_less_often_and_freezes_what_is_left_at_exit(restored_gc, monkeypatch, capsys):
    gc.unfreeze()
    monkeypatch.setattr(sys, "argv", ["pipeline", "--help"])
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == 0
    assert "monitor" in capsys.readouterr().out
    assert gc.get_threshold() == entry.GC_THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_a_failing_command_still_exits_with_its_code(restored_gc, monkeypatch, capsys):
    gc.unfreeze()
    monkeypatch.setattr(sys, "argv", ["pipeline", "monitor", "--no-such-option"])
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == 2
    assert gc.get_freeze_count() > 0
