"""A host's config file (``pipeline --config FILE.toml``): what a host sets once, under a ``[pipeline]`` table whose
keys are the settings' names (``model_name``, ``tracking_uri``, ``drift_threshold`` ...).

The environment stays on top: a key is applied only where its ``PIPELINE_*`` variable is not set. Unknown keys and
unreadable files are one line (``SettingsError``); a value is checked when the settings are built, as the
variable it stands for.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from pipeline.settings import Settings, SettingsError

TABLE = "pipeline"


def _as_text(value: Any) -> str:
    """A TOML value as its environment variable's text (lists and tables as JSON, as pydantic-settings reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def config_values(path: str) -> dict[str, str]:
    """The file's ``[pipeline]`` table as ``PIPELINE_*`` variables, or a one-line ``SettingsError``."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise SettingsError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SettingsError(f"{path}: not a TOML file ({err})") from None
    table = document.get(TABLE)
    others = sorted(key for key in document if key != TABLE)
    if not isinstance(table, dict) or others:
        extra = f"; found {', '.join(others)}" if others else ""
        raise SettingsError(f"{path}: the settings go under a [{TABLE}] table{extra}")
    unknown = sorted(key for key in table if key not in Settings.model_fields)
    if unknown:
        raise SettingsError(f"{path}: {', '.join(unknown)} is not a setting (docs/settings.md)")
    return {f"PIPELINE_{key.upper()}": _as_text(value) for key, value in table.items()}


def apply_config(path: str, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set the file's values in ``environ`` where the environment has none; returns those applied."""
    applied = {name: text for name, text in config_values(path).items() if name not in environ}
    environ.update(applied)
    return applied
