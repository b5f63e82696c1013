"""Per-minute metrics kept at ingest (``rollups`` table) and read by dashboards.

A trace counts once, in the minute of its ``request_time``, when it completes (leaves
IN_PROGRESS): one request, an error if its state is ERROR, its latency into the sum and the
histogram, its tokens and cost. Tokens of spans that arrive after completion are added to
the same minute. Percentiles are estimated from the histogram by linear interpolation
inside the bucket that holds the rank.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Row, and_, bindparam, insert, or_, select, update

from tracelake.store.base import MetricPoint
from tracelake.store.sql.core import StoreCore, chunked, exp_id_int, experiment_row
from tracelake.store.sql.schema import rollups

# Upper bounds (ms, inclusive) of the latency histogram; the last bucket is unbounded.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, math.inf,
)


def bucket_index(latency_ms: float) -> int:
    return bisect.bisect_left(LATENCY_BUCKETS_MS, max(latency_ms, 0))


def percentile(buckets: list[int], q: float) -> float | None:
    """Estimate the ``q`` quantile (0..1) from bucket counts over ``LATENCY_BUCKETS_MS``."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(buckets):
        if count and seen + count >= rank:
            low = 0.0 if i == 0 else float(LATENCY_BUCKETS_MS[i - 1])
            high = float(LATENCY_BUCKETS_MS[i])
            if math.isinf(high):
                return low  # nothing is known above the last finite bound
            return low + (high - low) * max(rank - seen, 0.0) / count
        seen += count
    return float(LATENCY_BUCKETS_MS[-2])


@dataclass(slots=True)
class RollupDelta:
    requests: int = 0
    errors: int = 0
    latency_sum_ms: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS))
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def add_request(self, latency_ms: int, error: bool) -> None:
        self.requests += 1
        self.errors += int(error)
        self.latency_sum_ms += latency_ms
        self.buckets[bucket_index(latency_ms)] += 1

    def add_usage(self, input_tokens: int | None, output_tokens: int | None, cost: float | None) -> None:
        self.input_tokens += input_tokens or 0
        self.output_tokens += output_tokens or 0
        self.cost += cost or 0.0


RollupKey = tuple[int, int]  # (experiment_id, epoch minute)


def minute_of(request_time_ms: int) -> int:
    return request_time_ms // 60_000


def apply_rollups(conn: Connection, deltas: dict[RollupKey, RollupDelta]) -> None:
    """Add ``deltas`` to the table: one SELECT, one INSERT, one UPDATE (executemany).

    Runs inside the store's write transaction (writers are serialised), so the
    read-merge-write of the histogram cannot race.
    """
    if not deltas:
        return
    keys = list(deltas)
    existing: dict[RollupKey, Row[Any]] = {}
    for part in chunked(keys, 400):
        cond = or_(*[and_(rollups.c.experiment_id == e, rollups.c.minute == m) for e, m in part])
        for row in conn.execute(select(rollups).where(cond)):
            existing[(row.experiment_id, row.minute)] = row
    inserts, updates = [], []
    for key, d in deltas.items():
        row = existing.get(key)
        if row is None:
            inserts.append({"experiment_id": key[0], "minute": key[1], "requests": d.requests, "errors": d.errors,
                            "latency_sum_ms": d.latency_sum_ms, "latency_buckets": orjson.dumps(d.buckets).decode(),
                            "input_tokens": d.input_tokens, "output_tokens": d.output_tokens, "cost": d.cost})
            continue
        old = orjson.loads(row.latency_buckets) or []
        old = old + [0] * (len(d.buckets) - len(old))
        merged = [a + b for a, b in zip(old, d.buckets)]
        updates.append({
            "b_exp": key[0], "b_minute": key[1],
            "requests": row.requests + d.requests,
            "errors": row.errors + d.errors,
            "latency_sum_ms": row.latency_sum_ms + d.latency_sum_ms,
            "latency_buckets": orjson.dumps(merged).decode(),
            "input_tokens": row.input_tokens + d.input_tokens,
            "output_tokens": row.output_tokens + d.output_tokens,
            "cost": row.cost + d.cost,
        })
    if inserts:
        conn.execute(insert(rollups), inserts)
    if updates:
        conn.execute(update(rollups).where(rollups.c.experiment_id == bindparam("b_exp"),
                                           rollups.c.minute == bindparam("b_minute")), updates)


class RollupsMixin(StoreCore):
    def get_metrics(self, experiment_id: str, start_minute: int, end_minute: int) -> list[MetricPoint]:
        """Minutes ``start_minute <= minute < end_minute`` that have data, in order (sparse)."""
        eid = exp_id_int(experiment_id)
        stmt = (select(rollups).where(rollups.c.experiment_id == eid, rollups.c.minute >= start_minute,
                                      rollups.c.minute < end_minute).order_by(rollups.c.minute))
        with self.read() as conn:
            experiment_row(conn, eid)
            return [_point(row) for row in conn.execute(stmt)]


def _point(row: Row[Any]) -> MetricPoint:
    buckets: list[int] = orjson.loads(row.latency_buckets) or []
    return MetricPoint(
        minute=row.minute,
        requests=row.requests,
        errors=row.errors,
        latency_p50_ms=percentile(buckets, 0.50),
        latency_p95_ms=percentile(buckets, 0.95),
        latency_p99_ms=percentile(buckets, 0.99),
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost=row.cost,
    )

