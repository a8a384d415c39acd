"""Read the Terraform under infra/ into plain Python data for the static tests.

python-hcl2 keeps HCL's quoting (``'"text"'`` for a string literal, ``"${expr}"`` for an
expression) and marks blocks with ``__is_block__``; ``load`` strips both so tests compare plain
values. Expressions stay as ``"${...}"`` strings.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"
ENVS = INFRA / "envs"
MODULE_NAMES = ("network", "artifact_store", "metadata_db", "tracking_host", "spark_runner", "notifications")
ENV_NAMES = ("aws", "localstack")

MODULE_META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def normalise(node: Any) -> Any:
    if isinstance(node, dict):
        return {unquote(k): normalise(v) for k, v in node.items() if k != "__is_block__"}
    if isinstance(node, list):
        return [normalise(v) for v in node]
    if isinstance(node, str):
        return unquote(node)
    return node


def tf_files(directory: Path = INFRA) -> list[Path]:
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


@cache
def load_file(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return normalise(hcl2.load(handle))


@cache
def load_dir(directory: Path) -> dict[str, list[Any]]:
    """Merge the top-level blocks of every .tf file of one directory (one Terraform module)."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for key, blocks in load_file(path).items():
            merged.setdefault(key, []).extend(blocks)
    return merged


def named_blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Blocks with one label (variable, output, module, locals merged) by name."""
    result: dict[str, dict[str, Any]] = {}
    for block in load_dir(directory).get(kind, []):
        result.update(block)
    return result


def resources(directory: Path, rtype: str, kind: str = "resource") -> dict[str, dict[str, Any]]:
    """Resources (or data sources, with kind="data") of one type, by name."""
    result: dict[str, dict[str, Any]] = {}
    for block in load_dir(directory).get(kind, []):
        result.update(block.get(rtype, {}))
    return result


def all_resources(directory: Path) -> dict[str, dict[str, dict[str, Any]]]:
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for block in load_dir(directory).get("resource", []):
        for rtype, by_name in block.items():
            result.setdefault(rtype, {}).update(by_name)
    return result


def locals_of(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in load_dir(directory).get("locals", []):
        merged.update(block)
    return merged


def first(block_list: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """A nested block that occurs once (python-hcl2 gives nested blocks as lists)."""
    return block_list[0] if isinstance(block_list, list) else block_list


def module_dir(env: str, call: dict[str, Any]) -> Path:
    return (ENVS / env / call["source"]).resolve()


def references(directory: Path, pattern: str) -> set[tuple[str, ...]]:
    """Every regex match of pattern in the .tf sources of a directory, as group tuples."""
    found: set[tuple[str, ...]] = set()
    compiled = re.compile(pattern)
    for path in directory.glob("*.tf"):
        found.update(match.groups() for match in compiled.finditer(path.read_text()))
    return found


def skip_comments(body: dict[str, Any]) -> list[str]:
    return [c["value"] for c in body.get("__comments__", []) if "checkov:skip" in c["value"]]
