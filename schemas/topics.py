"""The topic catalogue: every topic's name, key, partitioning and retention, in one place.

The per-message join reads SENDS, DELIVERY_RECEIPTS, CLICKS and CONVERSIONS in one Faust agent
and keeps its state in a table keyed by message id. Faust has no stream-stream join, so the
join is correct only if every input is *co-partitioned*: keyed by message id, with the same
partition count and the same partitioner (murmur2, Java-compatible; see KAFKA_PARTITIONER).
Then a message's events all reach the partition that holds its state, with no repartition hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DAY_MS = 24 * 3600 * 1000

# librdkafka's default partitioner (consistent_random, CRC32) differs from the Java client's
# and aiokafka's murmur2. Every producer of a co-partitioned topic must use this one.
KAFKA_PARTITIONER = "murmur2_random"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    description: str
    retention_ms: int = 14 * DAY_MS
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    copartitioned: bool = True  # True: uses Settings.partitions, like every join input

    def config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


SENDS = TopicSpec("smsfunnel.sends", "message_id", "send events (one per message attempted)")
DELIVERY_RECEIPTS = TopicSpec(
    "smsfunnel.delivery-receipts", "message_id", "carrier delivery receipts, canonical status"
)
CLICKS = TopicSpec("smsfunnel.clicks", "message_id", "tracked-link clicks, resolved to a message")
CONVERSIONS = TopicSpec(
    "smsfunnel.conversions", "message_id", "conversion postbacks, resolved to a message"
)
FUNNEL_ROWS = TopicSpec(
    "smsfunnel.funnel-rows",
    "message_id",
    "versioned funnel rows emitted by the join (one current row per message)",
)
DEAD_LETTERS = TopicSpec(
    "smsfunnel.dead-letters",
    "source topic",
    "records no stage could parse, with the reason, source partition and offset",
    retention_ms=30 * DAY_MS,
    copartitioned=False,
)

JOIN_INPUTS: tuple[TopicSpec, ...] = (SENDS, DELIVERY_RECEIPTS, CLICKS, CONVERSIONS)
ALL_TOPICS: tuple[TopicSpec, ...] = (*JOIN_INPUTS, FUNNEL_ROWS, DEAD_LETTERS)
DEAD_LETTER_PARTITIONS = 3

TOPIC_FOR_EVENT_TYPE: dict[str, TopicSpec] = {
    "send": SENDS,
    "delivery_receipt": DELIVERY_RECEIPTS,
    "click": CLICKS,
    "conversion": CONVERSIONS,
}


def partitions_for(spec: TopicSpec, copartitioned_count: int) -> int:
    return copartitioned_count if spec.copartitioned else DEAD_LETTER_PARTITIONS
