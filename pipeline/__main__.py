"""The ``pipeline`` command's process: ``pipeline ...`` (the console script) and ``python -m pipeline ...``.

A timer run is one short process that imports MLflow, scikit-learn, skops and the champion's library, about
1.5 million Python objects that live until exit. Python's cyclic garbage collector, at its default thresholds,
walks them again and again while they are being imported, and once more when the interpreter finalizes: 0.5 s
and 0.7 s of a 5 s run, measured on the demo champion (``make bench``, section 6). The process therefore
collects young objects less often (reference counting still frees everything that is not in a cycle), and at
exit freezes what is left, so finalization frees it without tracing it.
"""

from __future__ import annotations

import gc

# Young-generation threshold: collect after 10,000 net allocations of container objects instead of 700, and
# the older generations after 50 and 100 young ones. Garbage in cycles is freed later, never leaked.
GC_THRESHOLDS = (10_000, 50, 100)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    from pipeline.cli.main import app

    try:
        app()
    finally:
        gc.freeze()  # every object that is still alive is skipped by the collections of the finalization


if __name__ == "__main__":
    main()
