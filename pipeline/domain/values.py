"""Values as the project records and prints them: a number that may be missing, an error in one line."""

from __future__ import annotations

import math


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None when it is missing, NaN or infinite (stored as NULL, printed as a dash)."""
    return None if value is None or not math.isfinite(value) else float(value)


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters (its class name when it has none)."""
    text = " ".join(str(err).split()) or err.__class__.__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
