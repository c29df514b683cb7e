"""Every metric name the services register (each catalogue imported), as a query would spell it:
counters with `_total`, histograms with `_bucket`, `_count` and `_sum`."""

from __future__ import annotations

from prometheus_client import REGISTRY

import producers.metrics
import producers.redirector_metrics
import sinks.metrics
import stream_processors.metrics

CATALOGUES = (
    producers.metrics,
    producers.redirector_metrics,
    sinks.metrics,
    stream_processors.metrics,
)


def registered_metric_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names |= {sample.name for sample in family.samples} | {family.name}
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
    return names
