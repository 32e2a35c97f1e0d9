"""Summary statistics for benchmark samples: median, percentiles and ratios."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence

logger = logging.getLogger(__name__)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` percentile (0 to 1) of ``samples`` by the nearest-rank method.

    Raises:
        ValueError: ``samples`` is empty or ``fraction`` is outside 0 to 1.
    """
    if not samples:
        raise ValueError("percentile of an empty sample list; measure at least one value")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is outside 0 to 1")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    """Return the median of ``samples``.

    Raises:
        ValueError: ``samples`` is empty.
    """
    if not samples:
        raise ValueError("median of an empty sample list; measure at least one value")
    return float(statistics.median(samples))


def ratio(value: float, floor: float) -> float:
    """Return ``value / floor``, or infinity when the floor is not positive."""
    return value / floor if floor > 0 else math.inf
