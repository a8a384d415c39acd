"""Which batches of a monitor run are new: a batch is known by its source's identity (a file's key and ETag, or
its path and MD5: ``pipeline.io.inbox``; a simulated batch's name), never by its place in the list a run was given.

A source recorded before keeps its batch index and is skipped; a new one goes on after the run's newest recorded
batch, so the policy's state, which counts in batch indexes (``pipeline.domain.policy``), runs on across runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Numbered:
    """A source's place in the run: its batch ``index`` and whether it is ``recorded`` already; ``index`` None
    for a source given again in the same run (read once)."""

    index: int | None
    recorded: bool = False


def number_batches(names: Sequence[str], recorded: Mapping[int, str]) -> list[Numbered]:
    """Each source's place, given the run's recorded batches (``{index: source identity}``): a recorded source
    keeps its (newest) index, the new ones are numbered on from the newest recorded batch in the order given."""
    known = {source: index for index, source in sorted(recorded.items())}
    following = max(recorded, default=0) + 1
    seen: set[str] = set()
    placed: list[Numbered] = []
    for name in names:
        if name in seen:
            placed.append(Numbered(None))
        elif name in known:
            placed.append(Numbered(known[name], recorded=True))
        else:
            placed.append(Numbered(following))
            following += 1
        seen.add(name)
    return placed
