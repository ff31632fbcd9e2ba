"""Fixed-bucket latency histograms: what a rollup row keeps so percentiles merge across rows and ranges.

Bucket i counts values below BOUNDS_MS[i] (and at or above the previous bound); the last bucket is open.
Merging is adding counts, so a percentile over any set of rollup rows is as exact as one bucket is wide.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate

# Milliseconds; roughly 1.5x apart so a percentile is within about a third of a bucket of the truth.
BOUNDS_MS: tuple[float, ...] = (
    25, 50, 100, 150, 250, 400, 600, 800, 1_000, 1_500, 2_000, 3_000, 4_000, 6_000, 8_000,
    12_000, 16_000, 24_000, 32_000, 48_000, 64_000, 96_000, 128_000, 192_000, 300_000, 600_000,
)  # fmt: skip
BUCKET_COUNT = len(BOUNDS_MS) + 1
LATENCY_COLUMNS = tuple(f"lat_h{i:02d}" for i in range(BUCKET_COUNT))
TTFT_COLUMNS = tuple(f"ttft_h{i:02d}" for i in range(BUCKET_COUNT))


def bucket_of(value_ms: float) -> int:
    return bisect_right(BOUNDS_MS, value_ms)


# Each bucket's lower and upper bound; the open last bucket is taken to end at twice the last bound.
_EDGES = tuple(
    (BOUNDS_MS[i - 1] if i else 0.0, BOUNDS_MS[i] if i < len(BOUNDS_MS) else BOUNDS_MS[-1] * 2)
    for i in range(BUCKET_COUNT)
)


def summary(counts: Sequence[int]) -> dict[str, float | None]:
    """The values below which 50, 90 and 99 % of the counted values fall, each interpolated inside its
    bucket; None for an empty histogram."""
    running = list(accumulate(counts))  # once for all three: a usage report summarises hundreds of rows
    total = running[-1] if running else 0
    if total <= 0:
        return {"p50": None, "p90": None, "p99": None}
    return {"p50": _at(running, counts, 0.5 * total), "p90": _at(running, counts, 0.9 * total),
            "p99": _at(running, counts, 0.99 * total)}  # fmt: skip


def _at(running: list[int], counts: Sequence[int], rank: float) -> float:
    """The value of the given rank: in the first bucket whose running count reaches it (never an empty
    one), as far into the bucket as the rank is into its count."""
    index = bisect_left(running, rank)
    low, high = _EDGES[index]
    count = counts[index]
    return round(low + (high - low) * (rank - (running[index] - count)) / count, 1)
