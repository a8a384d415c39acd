"""A model's own policy: the thresholds and tolerances a team tunes for one model, kept with the model.

The settings (``PIPELINE_DRIFT_THRESHOLD``...) are every model's defaults. A registered model may carry its own
value of any of ``OVERRIDABLE`` as the tag ``policy.<name>`` (``pipeline configure --set NAME=VALUE``), so the
host, a laptop and a scheduler all read the same; ``resolve_policy`` is the one place that merges them, and says
where each value came from (the model's tag, a setting, or the default). A tag that names no such value, or holds
a value the setting itself would refuse, is a one-line ``PolicyError``: a typo never passes silently.

The retraining mode is the model's tag ``retrain_mode`` (``pipeline.domain.retrain_mode``), resolved beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from pipeline.domain.retrain_mode import RetrainMode, resolve_mode
from pipeline.settings import PolicySettings, Settings

POLICY_TAG_PREFIX = "policy."

# The values a model may set for itself: the decision rules' thresholds (not the retraining mode, which has its
# own tag) and the promotion test's.
OVERRIDABLE: tuple[str, ...] = (
    *(name for name in PolicySettings.model_fields if name != "retrain"),
    "promotion_min_gain",
    "promotion_z",
)


class PolicyError(ValueError):
    """A model's policy value that is unknown or invalid (one line naming where it came from)."""


@dataclass(frozen=True)
class ModelPolicy:
    """The settings a model's runs use (its own values over the settings) and where each value came from."""

    settings: Settings
    sources: dict[str, str]  # name -> "model tag policy.<name>" | "setting PIPELINE_<NAME>" | "default"
    mode: RetrainMode
    mode_source: str

    def overridden(self) -> dict[str, Any]:
        """The values the model sets for itself."""
        return {
            name: getattr(self.settings, name) for name, source in self.sources.items() if source.startswith("model")
        }


def policy_tag(name: str) -> str:
    return f"{POLICY_TAG_PREFIX}{name}"


def check_name(name: str, source: str) -> str:
    """``name`` if a model may set it, else a one-line ``PolicyError`` listing those it may."""
    if name not in OVERRIDABLE:
        raise PolicyError(f"{source}: {name!r} is not a policy value a model may set; one of: {', '.join(OVERRIDABLE)}")
    return name


def parse_value(name: str, raw: str, source: str) -> Any:
    """``raw`` as the setting ``name`` takes it, with the setting's own bounds; a one-line ``PolicyError`` if not."""
    field = Settings.model_fields[check_name(name, source)]
    kind: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    try:
        return adapter.validate_python(raw.strip())
    except ValidationError as err:
        problem = err.errors()[0]["msg"]
        raise PolicyError(f"{source}: {name}={raw!r}: {problem}") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (``pipeline configure --set``) as the name and its checked value."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise PolicyError(f"--set {text!r}: expected NAME=VALUE, e.g. --set drift_threshold=0.2")
    return name.strip(), parse_value(name.strip(), raw, "--set")


def resolve_policy(settings: Settings, model_tags: Mapping[str, str]) -> ModelPolicy:
    """The model's policy: each ``OVERRIDABLE`` value from its tag ``policy.<name>`` when it has one, else from the
    settings; and its retraining mode (``resolve_mode``)."""
    own: dict[str, Any] = {}
    for tag, raw in model_tags.items():
        if tag.startswith(POLICY_TAG_PREFIX):
            name = tag[len(POLICY_TAG_PREFIX) :]
            own[name] = parse_value(name, raw, f"the model's tag {tag}")
    given = settings.model_fields_set
    sources = {
        name: f"model tag {policy_tag(name)}"
        if name in own
        else f"setting PIPELINE_{name.upper()}"
        if name in given
        else "default"
        for name in OVERRIDABLE
    }
    mode, mode_source = resolve_mode(dict(model_tags), settings.retrain)
    return ModelPolicy(settings.model_copy(update=own), sources, mode, mode_source)
