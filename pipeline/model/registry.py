"""The model registry: ONE registered model name and three aliases.

- ``champion``: the version that serves (and that the monitor loads);
- ``challenger``: the version just trained;
- ``previous``: the champion it replaced, for rollback.

A promotion sets ``previous`` first, then switches ``champion`` in one alias update.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any, Protocol

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no such version, nothing to roll back to)."""


class NoChampion(RuntimeError):
    """The registry has no champion to monitor with."""


def require_champion(registry: Registry) -> VersionInfo:
    """The champion, or ``NoChampion`` saying how to get one: the check of every command that needs a champion."""
    champion = registry.champion()
    if champion is None:
        raise NoChampion(
            f"model {registry.name!r} has no champion: run `pipeline train --data PATH` or `pipeline adopt` first"
        )
    return champion


class RegistryClient(Protocol):
    """What the registry needs of ``mlflow.MlflowClient`` (a stand-in implements the same in tests)."""

    def get_registered_model(self, name: str) -> Any: ...
    def create_registered_model(self, name: str, tags: Any = None, description: str | None = None) -> Any: ...
    def get_model_version_by_alias(self, name: str, alias: str) -> Any: ...
    def get_model_version(self, name: str, version: str) -> Any: ...
    def search_model_versions(self, filter_string: str | None = None) -> Any: ...
    def update_model_version(self, name: str, version: str, description: str | None = None) -> Any: ...
    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None: ...
    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...
    def set_model_version_tag(self, name: str, version: str, key: str, value: Any) -> None: ...
    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None: ...
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...


@dataclass(frozen=True)
class VersionInfo:
    version: int
    run_id: str | None
    tags: dict[str, str]

    def metric(self, key: str) -> float | None:
        value = self.tags.get(key)
        return float(value) if value not in (None, "") else None


class Registry:
    def __init__(self, client: RegistryClient, name: str) -> None:
        self.client = client
        self.name = name

    def ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name,
                description=(
                    "A binary classifier monitored by driftloop. Aliases: champion serves, challenger is the "
                    "latest retrain, previous is the champion it replaced (rollback target)."
                ),
            )

    def by_alias(self, alias: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException:
            return None
        return VersionInfo(int(mv.version), mv.run_id, dict(mv.tags or {}))

    def champion(self) -> VersionInfo | None:
        return self.by_alias(CHAMPION)

    def version(self, version: int) -> VersionInfo:
        mv = self.client.get_model_version(self.name, str(version))
        return VersionInfo(int(mv.version), mv.run_id, dict(mv.tags or {}))

    def versions_with(self, tags: dict[str, str]) -> list[VersionInfo]:
        """The versions carrying all these tags (e.g. the monitor run that made them), oldest first."""
        quoted = self.name.replace("'", "\\'")
        found = [
            VersionInfo(int(mv.version), mv.run_id, dict(mv.tags or {}))
            for mv in self.client.search_model_versions(f"name = '{quoted}'")
        ]
        matching = [v for v in found if all(v.tags.get(key) == value for key, value in tags.items())]
        return sorted(matching, key=lambda v: v.version)

    def find_version(self, tags: dict[str, str]) -> VersionInfo | None:
        """The newest version carrying all these tags (e.g. the monitor run and batch that made it)."""
        matching = self.versions_with(tags)
        return matching[-1] if matching else None

    def version_uri(self, version: int) -> str:
        """The model URI of one version: what every loader of this registry takes."""
        return f"models:/{self.name}/{version}"

    def register(self, model_uri: str, run_id: str, tags: dict[str, str], description: str) -> int:
        """Register a logged model as a new version of the one model name, with tags and a description."""
        import mlflow

        self.ensure_model()
        with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Created version ..." itself
            mv = mlflow.register_model(model_uri, self.name, tags=tags)
        version = int(mv.version)
        self.client.update_model_version(self.name, str(version), description=description)
        return version

    def set_alias(self, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(self.name, alias, str(version))

    def tag_version(self, version: int, key: str, value: str) -> None:
        self.client.set_model_version_tag(self.name, str(version), key, value)

    def promote(self, version: int) -> int | None:
        """Make ``version`` the champion; the replaced champion becomes ``previous``. Returns it."""
        current = self.champion()
        if current is not None and current.version == version:
            return None
        if current is not None:
            self.set_alias(PREVIOUS, current.version)
        self.set_alias(CHAMPION, version)
        return current.version if current else None

    def rollback(self) -> tuple[int, int]:
        """Move ``champion`` back to ``previous``. Returns (rolled back from, rolled back to)."""
        current = require_champion(self)
        previous = self.by_alias(PREVIOUS)
        if previous is None:
            raise RegistryError(f"model {self.name!r} has no previous champion to roll back to")
        self.set_alias(CHAMPION, previous.version)
        self.client.delete_registered_model_alias(self.name, PREVIOUS)
        self.tag_version(current.version, "rolled_back", "true")
        return current.version, previous.version

    def model_tags(self) -> dict[str, str]:
        """The registered model's own tags (its retraining mode among them); empty when it does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(self.name)
        except MlflowException:
            return {}
        return dict(model.tags or {})

    def tag_model(self, key: str, value: str) -> None:
        """Set one of the registered model's own tags (the model is created when it does not exist)."""
        self.ensure_model()
        self.client.set_registered_model_tag(self.name, key, value)

    def untag_model(self, key: str) -> None:
        """Delete one of the registered model's own tags; nothing when it has no such tag (or does not exist)."""
        if key in self.model_tags():
            self.client.delete_registered_model_tag(self.name, key)

    def aliases(self) -> dict[str, int]:
        model = self.client.get_registered_model(self.name)
        return {alias: int(version) for alias, version in (model.aliases or {}).items()}
