"""Repeat a measurement and report min/median, with units a reader can compare."""

import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs."""

    runs: list = field(default_factory=list)

    @property
    def min(self):
        return min(self.runs)

    @property
    def median(self):
        return statistics.median(self.runs)

    def __str__(self):
        return f"min {seconds(self.min)}, median {seconds(self.median)} over {len(self.runs)} runs"


def repeat(fn, runs=5, warmup=1):
    """Time fn() `runs` times after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    t = Timing()
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        t.runs.append(time.perf_counter() - start)
    return t


def seconds(s):
    """Format a duration: '412 ms', '3.21 s', '2.5 min'."""
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.2f} s"
    return f"{s / 60:.1f} min"


def size(n):
    """Format a byte count in decimal units, as `docker images` does: '74.8 MB'."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
