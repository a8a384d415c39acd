"""Names from outside (object keys, file names a model lists) that become local paths: always inside their folder."""

from __future__ import annotations

from pathlib import Path


class OutsideFolder(ValueError):
    """A name that would become a path outside its folder (one line)."""


def path_inside(folder: Path, name: str, source: str) -> Path:
    """``folder / name``, resolved, when it lies strictly inside ``folder``; else ``OutsideFolder`` naming ``source``.

    Refused: ``..`` segments that climb out, absolute names, and names that resolve to the folder itself. A key
    is taken literally, never URL-decoded, so ``%2e%2e`` is an ordinary folder name inside.
    """
    root = folder.resolve()
    if not name or name.startswith(("/", "\\")) or "\x00" in name:
        raise OutsideFolder(f"{source}: {name!r} is not a relative name inside {folder}")
    path = (root / name).resolve()
    if root not in path.parents:
        raise OutsideFolder(f"{source}: {name!r} would be written outside {folder}")
    return path
