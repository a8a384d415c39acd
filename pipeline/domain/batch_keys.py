"""Which batches of a monitor run are new: a batch is known by its source's identity (a file's key and ETag, or
its path and MD5: ``pipeline.io.inbox``; a simulated batch's name), never by its place in the list a run was given.

A source recorded before keeps its batch index and is skipped; a new one goes on after the run's newest recorded
batch, so the policy's state, which counts in batch indexes (``pipeline.domain.policy``), runs on across runs.
A source an interrupted attempt was retraining on (a version carries it in its origin tags, its batch unrecorded)
gets that batch's index back and comes first, whatever arrived meanwhile: the version is credited to its own
batch, never to a file that sorts before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Numbered:
    """A source's place in the run: its batch ``index``, whether it is ``recorded`` already, whether it is
    ``resumed`` (an interrupted attempt's batch); ``index`` None for a source given again in the same run (read
    once)."""

    index: int | None
    recorded: bool = False
    resumed: bool = False


def number_batches(
    names: Sequence[str], recorded: Mapping[int, str], interrupted: Mapping[int, str] | None = None
) -> list[Numbered]:
    """Each source's place, given the run's recorded batches (``{index: source identity}``) and the batches an
    interrupted attempt left unrecorded (same shape): a recorded source keeps its (newest) index, an interrupted
    one gets its index back, the new ones are numbered on from the newest of those in the order given."""
    known = {source: index for index, source in sorted(recorded.items())}
    given = set(names)
    resumed = {
        source: index
        for index, source in sorted((interrupted or {}).items())
        if index not in recorded and source in given and source not in known
    }
    following = max([*recorded, *resumed.values()], default=0) + 1
    seen: set[str] = set()
    placed: list[Numbered] = []
    for name in names:
        if name in seen:
            placed.append(Numbered(None))
        elif name in known:
            placed.append(Numbered(known[name], recorded=True))
        elif name in resumed:
            placed.append(Numbered(resumed[name], resumed=True))
        else:
            placed.append(Numbered(following))
            following += 1
        seen.add(name)
    return placed


def processing_order(placed: Sequence[Numbered]) -> list[int]:
    """The positions of ``placed`` in the order to process them: the resumed sources first (their indexes are
    below every new one's), the rest as given."""
    return sorted(range(len(placed)), key=lambda position: not placed[position].resumed)
