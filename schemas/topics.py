"""The topic catalogue: every topic's name, key, partitioning and retention, in one place.

The per-message join reads SENDS, DELIVERY_RECEIPTS, CLICKS, LANDINGS, ENGAGEMENTS and
CONVERSIONS in one stateful stage (stream_processors/worker_app.py) and keeps its state per
partition, keyed by message id. The join is correct only if every input is *co-partitioned*:
keyed by message id, with the same partition count and the same partitioner (murmur2,
Java-compatible; see KAFKA_PARTITIONER).
Then a message's events all reach the partition that holds its state, with no repartition hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.events import EventBase, MessageEventBase, ProviderReceiptEvent, subscriber_key
from schemas.provider_ids import normalise, reference_key

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
LANDINGS = TopicSpec("smsfunnel.landings", "message_id", "landing-page loads (page beacon)")
ENGAGEMENTS = TopicSpec(
    "smsfunnel.engagements", "message_id", "add-to-cart, form fills and the like after landing"
)
CONVERSIONS = TopicSpec(
    "smsfunnel.conversions", "message_id", "conversion postbacks, resolved to a message"
)
# The resolver is keyed by "<account>|<provider>|<provider id spelling>" (schemas/provider_ids.py).
PROVIDER_RECEIPTS = TopicSpec(
    "smsfunnel.provider-receipts", "provider reference", "receipts naming only the provider id"
)
MESSAGE_REFERENCES = TopicSpec(
    "smsfunnel.message-references",
    "provider reference",
    "re-key stage: provider id spelling -> message id, emitted by the join for each send",
)
# The attribution stage is keyed by subscriber ("<account>|<recipient hash>"): its inputs are
# co-partitioned with each other (not with the per-message topics).
SUBSCRIBER_CONVERSIONS = TopicSpec(
    "smsfunnel.subscriber-conversions", "subscriber", "conversions known only by subscriber"
)
INBOUND = TopicSpec("smsfunnel.inbound", "subscriber", "inbound SMS: opt-out, opt-in, help, reply")
SUBSCRIBER_ACTIVITY = TopicSpec(
    "smsfunnel.subscriber-activity",
    "subscriber",
    "re-key stage: the join's touches (deliveries, clicks) and message conversions, by subscriber",
)
ATTRIBUTION_CREDITS = TopicSpec(
    "smsfunnel.attribution-credits",
    "subscriber",
    "versioned credit sets: per conversion, every model's credits to its touches",
)
MESSAGE_RESPONSES = TopicSpec(
    "smsfunnel.message-responses",
    "subscriber",
    "replies and opt-outs attributed to the message they answer",
)
FUNNEL_ROWS = TopicSpec(
    "smsfunnel.funnel-rows",
    "message_id",
    "versioned funnel rows emitted by the join (one current row per message)",
)
LATE_EVENTS = TopicSpec(
    "smsfunnel.late-events",
    "message_id",
    "events not folded into a funnel row: after the message's window, after its state was "
    "evicted, or orphans (no send ever came); see schemas/late_event.py",
    retention_ms=30 * DAY_MS,
)
UNATTRIBUTABLE_CONVERSIONS = TopicSpec(
    "smsfunnel.unattributable-conversions",
    "account",
    "conversions nothing ties to an SMS (a postback whose click id does not verify, an order "
    "with neither click id nor phone), kept with their reason; see schemas/unattributable.py",
    retention_ms=30 * DAY_MS,
    copartitioned=False,
)
CONVERSION_ADJUSTMENTS = TopicSpec(
    "smsfunnel.conversion-adjustments",
    "account",
    "refunds, chargebacks and payout corrections, signed, linked to a conversion by order id; "
    "see schemas/adjustment.py",
    retention_ms=30 * DAY_MS,
    copartitioned=False,
)
LINKS = TopicSpec(
    "smsfunnel.links",
    "link id",
    "tracked-link registry (link id -> account, destination, expiry); the redirector's table",
    retention_ms=-1,
    cleanup_policy="compact",
    copartitioned=False,
)
PROMO_CODES = TopicSpec(
    "smsfunnel.promo-codes",
    "account|code",
    "promo-code registry (code -> the message or campaign it was issued for); the ingest "
    "service's table, see schemas/promo_codes.py",
    retention_ms=-1,
    cleanup_policy="compact",
    copartitioned=False,
)
DEAD_LETTERS = TopicSpec(
    "smsfunnel.dead-letters",
    "source topic",
    "records no stage could parse, with the reason, source partition and offset",
    retention_ms=30 * DAY_MS,
    copartitioned=False,
)

JOIN_INPUTS: tuple[TopicSpec, ...] = (
    SENDS,
    DELIVERY_RECEIPTS,
    CLICKS,
    LANDINGS,
    ENGAGEMENTS,
    CONVERSIONS,
)
ATTRIBUTION_INPUTS: tuple[TopicSpec, ...] = (SUBSCRIBER_ACTIVITY, SUBSCRIBER_CONVERSIONS, INBOUND)
RESOLVER_INPUTS: tuple[TopicSpec, ...] = (PROVIDER_RECEIPTS, MESSAGE_REFERENCES)
SINK_INPUTS: tuple[TopicSpec, ...] = (
    FUNNEL_ROWS,
    ATTRIBUTION_CREDITS,
    MESSAGE_RESPONSES,
    DEAD_LETTERS,
    LATE_EVENTS,
    UNATTRIBUTABLE_CONVERSIONS,
    CONVERSION_ADJUSTMENTS,
    INBOUND,  # kept as events too: opt-ins and opt-outs per period (subscriber growth)
)
ALL_TOPICS: tuple[TopicSpec, ...] = (
    *JOIN_INPUTS,
    *RESOLVER_INPUTS,
    SUBSCRIBER_CONVERSIONS,
    INBOUND,
    SUBSCRIBER_ACTIVITY,
    ATTRIBUTION_CREDITS,
    MESSAGE_RESPONSES,
    FUNNEL_ROWS,
    LATE_EVENTS,
    UNATTRIBUTABLE_CONVERSIONS,
    CONVERSION_ADJUSTMENTS,
    LINKS,
    PROMO_CODES,
    DEAD_LETTERS,
)
DEAD_LETTER_PARTITIONS = 3

TOPIC_FOR_EVENT_TYPE: dict[str, TopicSpec] = {
    "send": SENDS,
    "delivery_receipt": DELIVERY_RECEIPTS,
    "click": CLICKS,
    "landing": LANDINGS,
    "engagement": ENGAGEMENTS,
    "conversion": CONVERSIONS,
    "subscriber_conversion": SUBSCRIBER_CONVERSIONS,
    "inbound": INBOUND,
    "provider_receipt": PROVIDER_RECEIPTS,
}


def record_key(event: EventBase) -> bytes:
    """The Kafka key an input event is produced with: what its topic is partitioned by."""
    if isinstance(event, MessageEventBase):
        return event.message_id.encode()
    if isinstance(event, ProviderReceiptEvent):
        spelling = normalise(event.provider_message_id)
        return reference_key(event.account, event.provider, spelling)
    return subscriber_key(event.account, event.recipient_hash)  # type: ignore[attr-defined]


def partitions_for(spec: TopicSpec, copartitioned_count: int) -> int:
    # Topics outside the joins (dead letters, the link registry) are small: a few partitions.
    return copartitioned_count if spec.copartitioned else DEAD_LETTER_PARTITIONS
