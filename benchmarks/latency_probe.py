"""Event time -> queryable latency at a fixed input rate (pipeline_bench.py's latency scenarios).

The worker and the sink run on an empty broker; the generated campaign's events are produced
at `rate` events/s, and every `probe_every` seconds a probe send is produced among them,
stamped with the wall clock. A poller asks the running sink which probes' funnel rows are
queryable; a probe's latency is from its event time to the first answer that has its row (so
it includes the producer's acknowledgement, the worker, the sink's batch age and the poll
interval). Probes not queryable by the end are reported as such, never left out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from producers.kafka_producer import EventProducer
from schemas.events import EventBase, SendEvent
from sinks.query_client import QueryError, SinkQuery

PROBE_ACCOUNT = "bench-latency-probe"


@dataclass
class Latency:
    rate: int  # events/s asked for
    achieved_rate: float  # events/s the producer kept up, probes included
    seconds: float  # of load
    probes: int
    queryable: int  # probes whose row was seen before the end
    p50: float | None
    p99: float | None
    max: float | None

    def line(self) -> str:
        return (
            f"{self.rate:,}/s asked, {self.achieved_rate:,.0f}/s produced "
            f"for {self.seconds:.0f} s: "
            f"{self.queryable} of {self.probes} probes queryable, p50 {seconds(self.p50, ' s')}, "
            f"p99 {seconds(self.p99, ' s')}, max {seconds(self.max, ' s')}"
        )


def seconds(x: float | None, unit: str = "") -> str:
    """A latency figure, or "-" when no probe was queryable."""
    return "-" if x is None else f"{x:.2f}{unit}"


def quantile(values: list[float], level: float) -> float | None:
    """The element at floor(level * n) of the sorted values (ClickHouse quantileExact)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


class ProbePoller(threading.Thread):
    """Asks the sink which probes are queryable, every `interval` seconds, until stopped."""

    def __init__(self, query: SinkQuery, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.query = query
        self.interval = interval
        self.seen: dict[str, float] = {}  # probe message id -> monotonic time first seen
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                rows = self.query.rows(
                    "SELECT DISTINCT message_id FROM funnel_rows WHERE account = {a:String}",
                    {"a": PROBE_ACCOUNT},
                )
            except (OSError, QueryError):
                rows = []  # the sink is starting or busy: ask again
            now = time.monotonic()
            for r in rows:
                self.seen.setdefault(r["message_id"], now)
            self.halt.wait(self.interval)


def probe_send(template: SendEvent, i: int) -> SendEvent:
    return template.model_copy(
        update={
            "account": PROBE_ACCOUNT,
            "message_id": f"probe-{i}",
            "event_id": f"probe-send-{i}",
            "occurred_at": datetime.now(UTC),
            "provider_message_ids": (),
        }
    )


def measure(
    bootstrap: str,
    query: SinkQuery,
    events: Iterable[EventBase],
    rate: int,
    seconds: float,
    drain_seconds: float,
    probe_every: float = 0.2,
) -> Latency:
    """Produce `events` at `rate`/s for at most `seconds`, probes among them; then wait up to
    `drain_seconds` for the last probes."""
    load = list(events)
    template = next(e for e in load if isinstance(e, SendEvent))
    producer = EventProducer(bootstrap)
    poller = ProbePoller(query)
    # one probe queryable first: the worker and the sink are up and assigned
    producer.send(probe_send(template, -1))
    producer.flush()
    poller.start()
    deadline = time.monotonic() + 120
    while "probe--1" not in poller.seen:
        if time.monotonic() > deadline:
            poller.halt.set()
            raise TimeoutError("the warm-up probe was not queryable within 120 s")
        time.sleep(0.05)

    sent_at: dict[str, float] = {}
    produced = 0
    start = time.monotonic()
    next_probe = start
    for i, event in enumerate(load):
        now = time.monotonic()
        if now - start >= seconds:
            break
        if now >= next_probe:
            probe = probe_send(template, len(sent_at))
            sent_at[probe.message_id] = now
            producer.send(probe)
            produced += 1
            next_probe += probe_every
        ahead = start + i / rate - now
        if ahead > 0:
            time.sleep(ahead)
        producer.send(event)
        produced += 1
    elapsed = time.monotonic() - start
    producer.flush()
    producer.close()

    deadline = time.monotonic() + drain_seconds
    while time.monotonic() < deadline and not set(sent_at) <= set(poller.seen):
        time.sleep(0.1)
    poller.halt.set()
    poller.join(5)
    latencies = [poller.seen[m] - t for m, t in sent_at.items() if m in poller.seen]
    return Latency(
        rate=rate,
        achieved_rate=produced / elapsed if elapsed else 0.0,
        seconds=elapsed,
        probes=len(sent_at),
        queryable=len(latencies),
        p50=quantile(latencies, 0.5),
        p99=quantile(latencies, 0.99),
        max=max(latencies) if latencies else None,
    )
