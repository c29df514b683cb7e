"""Benchmark (not a test): what our own code costs per event, with no broker and no engine.

Plays a generated campaign (the demo's mix) through the worker's three steps
(stream_processors/stage_steps.py) over in-memory tables, routing each step's outputs that are
another stage's inputs back in, as the broker would. The figure is the ceiling our per-event code
puts on the worker; pipeline_bench.py measures the worker under Quix against the bare consumer.

    PYTHONPATH=. .venv/bin/python benchmarks/step_profile.py --messages 10000 [--profile 30]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import zlib
from collections import Counter, deque
from collections.abc import Iterator, MutableMapping
from datetime import timedelta

from producers.workload import generate_campaign
from schemas.events import event_to_json
from schemas.topics import (
    ATTRIBUTION_INPUTS,
    JOIN_INPUTS,
    RESOLVER_INPUTS,
    TOPIC_FOR_EVENT_TYPE,
    record_key,
)
from smsfunnel.settings import Settings
from stream_processors.checkpoint_outputs import CheckpointOutputs
from stream_processors.stage_steps import AttributeStep, JoinStep, Output, ResolveStep
from stream_processors.subscriber_stage import StageSettings
from stream_processors.worker_app import COMMITTED_WITH_OUTPUTS

PARTITIONS = 12


class PartitionDicts(MutableMapping[bytes, bytes]):
    """One dict per partition; `use(p)` before each step, as the engine binds its store."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[bytes, bytes]] = {}
        self.current: dict[bytes, bytes] = {}

    def use(self, partition: int) -> None:
        self.current = self.parts.setdefault(partition, {})

    def __getitem__(self, key: bytes) -> bytes:
        return self.current[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.current[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self.current[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.current)

    def __len__(self) -> int:
        return len(self.current)


class CaughtUp:
    """Every input caught up: the watermark follows each input's own progress."""

    def __init__(self) -> None:
        self.processed: dict[tuple[str, int], int] = {}

    def assigned(self, partition: int, names: list[str]) -> None:
        pass

    def lagging(self, partition: int, names: list[str]) -> list[str]:
        return []


def play(records: list[Output], checkpoint: int) -> tuple[int, Counter[str]]:
    """Every step's outputs wait for the checkpoint, as in the worker (CheckpointSink): one
    after each `checkpoint` steps, and then the outputs that are inputs go round again."""
    settings = Settings()
    lateness = timedelta(hours=settings.allowed_lateness_hours)
    retention = timedelta(days=settings.closed_marker_days)
    stage = StageSettings(lateness=lateness, marker_retention=retention)
    progress = CaughtUp()
    tables = {name: PartitionDicts() for name in ("join", "resolver", "attribution")}
    join = JoinStep(tables["join"], progress, lateness, retention)
    resolve = ResolveStep(tables["resolver"], progress, lateness, retention)
    attribute = AttributeStep(tables["attribution"], stage, COMMITTED_WITH_OUTPUTS)
    route = {s.name: ("join", join) for s in JOIN_INPUTS}
    route |= {s.name: ("resolver", resolve) for s in RESOLVER_INPUTS}
    route |= {s.name: ("attribution", attribute) for s in ATTRIBUTION_INPUTS}
    offsets: Counter[tuple[str, int]] = Counter()
    produced: Counter[str] = Counter()
    queue: deque[tuple[str, bytes, bytes]] = deque((t, k, v) for t, k, v, _ in records)
    outputs = CheckpointOutputs()
    steps = 0
    while queue or len(outputs):
        if queue:
            topic, key, value = queue.popleft()
            partition = zlib.crc32(key) % PARTITIONS
            offset = offsets[(topic, partition)]
            offsets[(topic, partition)] += 1
            table, step = route[topic]
            tables[table].use(partition)
            for out in step(partition, topic, offset, key, value):
                outputs.add(*out)
            steps += 1
        if not queue or steps % checkpoint == 0:
            for out in outputs.drain():
                produced[out[0]] += 1
                if out[0] in route:
                    queue.append(out)
    return steps, produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--checkpoint",
        type=int,
        default=2_000,
        help="steps per checkpoint (the worker's is 1 s: about 2,000 steps at its speed)",
    )
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime, cumulative")
    args = parser.parse_args()
    workload = generate_campaign(args.messages, seed=args.seed)
    records: list[Output] = [
        (TOPIC_FOR_EVENT_TYPE[e.event_type].name, record_key(e), event_to_json(e), None)  # type: ignore[attr-defined]
        for e in workload.events
    ]
    profiler = cProfile.Profile() if args.profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    steps, produced = play(records, args.checkpoint)
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{len(records):,} input events, {steps:,} steps, {sum(produced.values()):,} records "
        f"produced in {seconds:.2f} s: {len(records) / seconds:,.0f} input events/s, "
        f"{cpu / len(records) * 1e6:,.0f} CPU µs per input event"
        + (" (under cProfile)" if profiler else "")
    )
    for topic, count in produced.most_common():
        print(f"  {topic:36} {count / len(records):.2f} per input event")
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.profile)


if __name__ == "__main__":
    main()
