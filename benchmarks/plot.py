"""The cold-start chart: median cold start per entry point next to its import floor."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def plot_cold_start(result: dict[str, Any], path: Path) -> Path:
    """Draw ``result`` of :func:`benchmarks.cold_start.run` as a grouped bar chart PNG at ``path``.

    Each bar is the median over the runs. The label above the instance bar
    is the median of the per-run ratios of instance to floor.
    """
    import matplotlib

    # Agg draws to files only, so no display is needed.
    matplotlib.use("Agg")
    from matplotlib import pyplot

    entries = result["entry_points"]
    names = list(entries)
    floors = [entries[name]["median_floor_seconds"] for name in names]
    instances = [entries[name]["median_instance_seconds"] for name in names]
    positions = range(len(names))
    width = 0.38

    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=120)
    axes.bar([x - width / 2 for x in positions], floors, width, label="floor: functions-framework + SDK imports")
    bars = axes.bar(
        [x + width / 2 for x in positions], instances, width, label="cold start: process start to first response"
    )
    for bar, name in zip(bars, names, strict=True):
        axes.annotate(
            f"{entries[name]['median_ratio']:.2f}×",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )

    runs = len(entries[names[0]]["ratios"])
    axes.set_xticks(list(positions), names)
    axes.set_ylabel("seconds (median)")
    axes.set_title(f"Cold start per entry point against its import floor ({runs} runs)")
    axes.legend(loc="upper left", fontsize=8)
    axes.set_ylim(0, max(instances + floors) * 1.25)
    figure.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return path
