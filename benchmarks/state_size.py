"""Bytes of join and attribution state per message / subscriber, as stored in the worker's
state stores (the serialised value; the changelog record adds its key and Kafka's record
overhead).

    PYTHONPATH=. .venv/bin/python benchmarks/state_size.py
"""

from __future__ import annotations

import statistics

from producers.workload import generate_campaign
from schemas.events import MessageEventBase
from stream_processors.message_state import apply_event, subscriber_snapshot
from stream_processors.subscriber_state import apply_snapshot, apply_subscriber_event


def main() -> None:
    workload = generate_campaign(10_000, seed=7)
    messages: dict = {}
    subscribers: dict = {}
    for e in workload.events:
        if isinstance(e, MessageEventBase):
            messages[e.message_id], _ = apply_event(messages.get(e.message_id), e)
    for state in messages.values():
        snap = subscriber_snapshot(state)
        if snap is not None:
            subscribers[snap.recipient_hash], _ = apply_snapshot(
                subscribers.get(snap.recipient_hash), snap
            )
    for e in workload.events:
        if not isinstance(e, MessageEventBase):
            subscribers[e.recipient_hash], _ = apply_subscriber_event(
                subscribers.get(e.recipient_hash), e
            )
    for name, sizes in (
        ("message state", [len(x.to_bytes()) for x in messages.values()]),
        ("subscriber state", [len(x.to_bytes()) for x in subscribers.values()]),
    ):
        print(
            f"{name}: {len(sizes)} keys, mean {statistics.mean(sizes):.0f} B, "
            f"median {statistics.median(sizes):.0f} B, max {max(sizes)} B"
        )


if __name__ == "__main__":
    main()
