"""Diagnostic (not a test): does a Faust table store survive SIGKILL of the join worker?

Starts a throwaway broker and a worker with the given store, produces a 3,000-message campaign,
SIGKILLs the worker when about 30 % is processed, restarts it, then compares every message's
highest funnel-row version on the topic with the offline count of its distinct events.
With --twice, half the events are first processed completely and the worker is killed at rest
and restarted before the other half arrives (and is killed mid-stream as above).

    PYTHONPATH=. .venv/bin/python benchmarks/worker_kill_check.py rocksdb   # or: memory
    PYTHONPATH=. .venv/bin/python benchmarks/worker_kill_check.py memory --twice

Prints "<store>: N of 3000 messages lost events"; N > 0 means the store lost state.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra.local_kafka import LocalKafka, free_port
from infra.topics import provision_topics
from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from schemas.funnel_row import FunnelRow
from schemas.topics import FUNNEL_ROWS, JOIN_INPUTS
from smsfunnel.drain import LagProbe
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.settings import PROJECT_ROOT, Settings
from tests.ground_truth import expected_messages

LIB = PROJECT_ROOT / ".smsfunnel" / "kafka" / "lib"


def highest_versions(bootstrap: str) -> tuple[dict[str, int], dict[str, int]]:
    """Every funnel row on the topic, read to each partition's end offset (not "until idle":
    a fresh group's first assignment alone can take longer than an idle heuristic waits, and a
    read that stops early makes messages look short on every partition)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kill-check", "log_level": 3})
    partitions = consumer.list_topics(FUNNEL_ROWS.name, timeout=10).topics[FUNNEL_ROWS.name]
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(FUNNEL_ROWS.name, p), timeout=10)[1]
        for p in partitions.partitions
    }
    consumer.assign([TopicPartition(FUNNEL_ROWS.name, p, OFFSET_BEGINNING) for p in ends])
    best: dict[str, int] = {}
    partition: dict[str, int] = {}
    position = {p: 0 for p in ends}
    deadline = time.monotonic() + 300
    while any(position[p] < end for p, end in ends.items()):
        assert time.monotonic() < deadline, f"could not read funnel rows to the end: {position}"
        for m in consumer.consume(5000, 1.0):
            if m.error() is None:
                row = FunnelRow.from_json(m.value())
                best[row.message_id] = max(best.get(row.message_id, 0), row.version)
                partition[row.message_id] = m.partition()
                position[m.partition()] = m.offset() + 1
    consumer.close()
    return best, partition


def kill_and_restart(worker, env, logs):  # type: ignore[no-untyped-def]
    worker.kill()
    worker.wait()
    return spawn_service("worker", env, logs)


def main(store: str, twice: bool) -> None:
    root = Path(tempfile.mkdtemp())
    broker = LocalKafka(root / "kafka", heap="512m", lib=LIB)
    bootstrap = broker.start().address
    settings = Settings(
        state_dir=root / "state",
        kafka_bootstrap=bootstrap,
        table_store=store,
        worker_metrics_port=free_port(),
        sink_http_port=free_port(),
    )
    provision_topics(bootstrap, settings.partitions, settings.worker_id)
    env = settings_env(settings, bootstrap)
    worker = spawn_service("worker", env, root / "logs")
    workload = generate_campaign(3000, seed=41, account="kill-check")
    producer = EventProducer(bootstrap)
    probe = LagProbe(bootstrap)
    topics = [t.name for t in JOIN_INPUTS]
    events = workload.events
    if twice:  # half the events, fully processed, then a kill at rest
        producer.send_many(events[: len(events) // 2])
        producer.flush()
        deadline = time.monotonic() + 180
        while probe.lag(settings.worker_id, topics) > 0:
            assert time.monotonic() < deadline, "worker did not catch up"
            time.sleep(0.5)
        worker = kill_and_restart(worker, env, root / "logs")
        events = events[len(events) // 2 :]
    producer.send_many(events)
    producer.close()
    start = probe.lag(settings.worker_id, topics)
    deadline = time.monotonic() + 180
    while probe.lag(settings.worker_id, topics) > start * 0.7:
        assert worker.poll() is None and time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.1)
    worker = kill_and_restart(worker, env, root / "logs")
    deadline = time.monotonic() + 300
    while probe.lag(settings.worker_id, topics) > 0:
        assert time.monotonic() < deadline, "restarted worker did not catch up"
        time.sleep(1)
    stop_service(worker)
    probe.close()  # librdkafka clients left to interpreter teardown have segfaulted here
    best, partition = highest_versions(bootstrap)
    broker.stop()
    truth = expected_messages(workload.events)
    lost = [mid for (_, mid), t in truth.items() if best.get(mid) != t.distinct_events]
    by_partition = Counter(partition.get(mid, -1) for mid in lost)
    print(f"short messages by partition: {dict(sorted(by_partition.items()))}", flush=True)
    mode = "killed at rest, then mid-stream" if twice else "killed mid-stream"
    print(
        f"{store} ({mode}): {len(lost)} of {len(truth)} messages lost events {lost[:3]} "
        f"(logs: {root})",
        flush=True,
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(args[0] if args else "rocksdb", twice="--twice" in sys.argv)
