"""Fixed-bucket latency histograms: what a rollup row keeps so percentiles merge across rows and ranges.

Bucket i counts values below BOUNDS_MS[i] (and at or above the previous bound); the last bucket is open.
Merging is adding counts, so a percentile over any set of rollup rows is as exact as one bucket is wide.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

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


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The value below which `fraction` of the counted values fall, interpolated inside its bucket."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low = BOUNDS_MS[index - 1] if index > 0 else 0.0
            high = BOUNDS_MS[index] if index < len(BOUNDS_MS) else BOUNDS_MS[-1] * 2
            return round(low + (high - low) * max(0.0, rank - seen) / count, 1)
        seen += count
    return float(BOUNDS_MS[-1])


def summary(counts: Sequence[int]) -> dict[str, float | None]:
    return {"p50": percentile(counts, 0.5), "p90": percentile(counts, 0.9), "p99": percentile(counts, 0.99)}
