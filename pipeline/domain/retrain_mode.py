"""Who may replace a model: the retraining mode of a registered model, and where it was decided.

- ``off``: monitor and alarm only; nothing is trained.
- ``challenger``: a due retrain trains, tunes and registers a challenger with its measured gain against the
  champion and the ``challenger`` alias; the champion stays until a person runs ``pipeline promote``.
- ``auto``: a challenger that wins on the holdout is promoted by the monitor itself.

A model's own mode travels with it as the registered model's tag ``retrain_mode`` (``pipeline adopt --retrain``,
``pipeline configure --retrain``), so the host, a laptop and a scheduler all read the same. Without the tag, the
setting ``PIPELINE_RETRAIN`` decides (default ``auto``). ``pipeline adopt`` writes ``challenger`` unless told
otherwise: a model its owners built is never replaced without asking.
"""

from __future__ import annotations

from enum import StrEnum

MODE_TAG = "retrain_mode"  # the registered model's tag holding its own mode


class RetrainMode(StrEnum):
    off = "off"
    challenger = "challenger"
    auto = "auto"


ADOPTED_DEFAULT = RetrainMode.challenger


class ModeError(ValueError):
    """A retraining mode that is not one of ``RetrainMode`` (one line)."""


def parse_mode(value: str, source: str) -> RetrainMode:
    """``value`` as a mode, or a one-line ``ModeError`` naming ``source`` and the allowed values."""
    try:
        return RetrainMode(value.strip().lower())
    except ValueError:
        allowed = " | ".join(mode.value for mode in RetrainMode)
        raise ModeError(f"{source}: retraining mode {value!r} is not one of {allowed}") from None


def resolve_mode(model_tags: dict[str, str], setting: str) -> tuple[RetrainMode, str]:
    """The mode in effect for a model and where it came from: its own tag, else the setting."""
    tagged = model_tags.get(MODE_TAG)
    if tagged:
        return parse_mode(tagged, f"the model's tag {MODE_TAG}"), f"model tag {MODE_TAG}"
    return parse_mode(setting, "PIPELINE_RETRAIN"), "setting PIPELINE_RETRAIN"
