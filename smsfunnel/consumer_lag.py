"""A consumer's lag per assigned partition as a Prometheus gauge, for the worker and the sink."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge


def export_lag(consumer: Any, gauge: Gauge, exported: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Records not fetched yet per assigned partition (log end as of the last fetch, less the
    position) into `gauge` {topic, partition}; the partitions of `exported` no longer assigned
    leave it. Local calls only (no broker round trip). Returns what is exported now. Quix's
    changelog partitions, assigned while a store recovers, are left out."""
    tps = [tp for tp in consumer.assignment() if not tp.topic.startswith("changelog__")]
    seen = set()
    for tp in consumer.position(tps) if tps else []:
        _, end = consumer.get_watermark_offsets(tp, cached=True)
        if end is None or end < 0 or tp.offset < 0:
            continue
        labels = (tp.topic, str(tp.partition))
        gauge.labels(*labels).set(max(end - tp.offset, 0))
        seen.add(labels)
    for labels in exported - seen:
        gauge.remove(*labels)
    return seen
