"""Per-subscriber attribution state and what is derived from it. Pure: no Kafka here.

The state holds, for one (account, subscriber): the newest snapshot of each message sent to
them (from the join, by version), their subscriber-only conversions and their inbound SMS.
Like the message state it only grows, and every output is a function of it alone:
  - conversions: one per order id across all of the subscriber's messages and sources (the
    earliest by event time, then event id);
  - credits: for each conversion and model, the weights of the touches in their windows
    (attribution.py); human clicks always, deliveries too when view-through is on;
  - responses: each inbound SMS is attributed to the last message that sender delivered to the
    subscriber before it (opt-outs and replies per message, for unsubscribe rate and response
    time).
What no later input can change any more is retired (subscriber_retention.py): the fields
after `inbound` are what retirement leaves behind so that outputs stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import orjson

from schemas.attribution_credit import ConversionCredits, CreditLine, MessageResponse
from schemas.events import InboundEvent, InboundKind, SubscriberConversionEvent
from schemas.subscriber_activity import ConversionRecord, SubscriberSnapshot
from stream_processors.attribution import (
    Model,
    Touch,
    attribution_window,
    credits_of_eligible,
    eligible_touches,
)


@dataclass
class Inbound:
    occurred_at: datetime
    sender: str
    kind: InboundKind


@dataclass
class SubscriberState:
    account: str
    recipient_hash: str
    snapshots: dict[str, SubscriberSnapshot] = field(default_factory=dict)
    direct_conversions: dict[str, ConversionRecord] = field(default_factory=dict)
    inbound: dict[str, Inbound] = field(default_factory=dict)
    clock: datetime | None = None  # newest event time of any input applied
    changed: dict[str, int] = field(default_factory=dict)  # input kind -> offset of last change
    stripped: set[str] = field(default_factory=set)  # snapshots cut down to their deliveries
    retired_version: int = 0  # what retired parts added to `version`
    # order id -> (occurred_at, event_id, forget after): conversions retired, still winning
    retired_orders: dict[str, tuple[datetime, str, datetime]] = field(default_factory=dict)
    retired_messages: dict[str, datetime] = field(default_factory=dict)  # id -> forget after

    @property
    def version(self) -> int:
        """Grows with every change: each snapshot's version only grows, the sets only grow,
        and retiring a part moves its share into `retired_version`."""
        return (
            sum(s.version for s in self.snapshots.values())
            + len(self.direct_conversions)
            + len(self.inbound)
            + self.retired_version
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "a": self.account,
                "r": self.recipient_hash,
                "s": {k: s.model_dump(mode="json") for k, s in self.snapshots.items()},
                "d": {k: c.model_dump(mode="json") for k, c in self.direct_conversions.items()},
                "i": {
                    k: [i.occurred_at.isoformat(), i.sender, i.kind.value]
                    for k, i in self.inbound.items()
                },
                "t": self.clock.isoformat() if self.clock else None,
                "o": self.changed,
                "x": sorted(self.stripped),
                "rv": self.retired_version,
                "ro": {
                    k: [t.isoformat(), e, f.isoformat()]
                    for k, (t, e, f) in self.retired_orders.items()
                },
                "rm": {k: f.isoformat() for k, f in self.retired_messages.items()},
            }
        )

    @classmethod
    def from_bytes(cls, payload: bytes) -> SubscriberState:
        d = orjson.loads(payload)
        return cls(
            account=d["a"],
            recipient_hash=d["r"],
            snapshots={k: SubscriberSnapshot.model_validate(v) for k, v in d["s"].items()},
            direct_conversions={k: ConversionRecord.model_validate(v) for k, v in d["d"].items()},
            inbound={
                k: Inbound(datetime.fromisoformat(t), s, InboundKind(kind))
                for k, (t, s, kind) in d["i"].items()
            },
            # states written before retention existed have none of these
            clock=datetime.fromisoformat(d["t"]) if d.get("t") else None,
            changed=d.get("o", {}),
            stripped=set(d.get("x", ())),
            retired_version=d.get("rv", 0),
            retired_orders={
                k: (datetime.fromisoformat(t), e, datetime.fromisoformat(f))
                for k, (t, e, f) in d.get("ro", {}).items()
            },
            retired_messages={k: datetime.fromisoformat(f) for k, f in d.get("rm", {}).items()},
        )


def apply_snapshot(
    state: SubscriberState | None, snap: SubscriberSnapshot
) -> tuple[SubscriberState, bool]:
    if state is None:
        state = SubscriberState(snap.account, snap.recipient_hash)
    current = state.snapshots.get(snap.message_id)
    if current is not None and current.version >= snap.version:
        return state, False
    state.snapshots[snap.message_id] = snap
    return state, True


def apply_subscriber_event(
    state: SubscriberState | None, event: SubscriberConversionEvent | InboundEvent
) -> tuple[SubscriberState, bool]:
    if state is None:
        state = SubscriberState(event.account, event.recipient_hash)
    if event.event_id in state.direct_conversions or event.event_id in state.inbound:
        return state, False
    if isinstance(event, SubscriberConversionEvent):
        state.direct_conversions[event.event_id] = ConversionRecord(
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            order_id=event.order_id,
            name=event.name,
            amount=event.amount,
            currency=event.currency,
        )
    else:
        state.inbound[event.event_id] = Inbound(event.occurred_at, event.sender, event.kind)
    return state, True


def conversions(state: SubscriberState) -> list[ConversionRecord]:
    """One per order id across the subscriber's messages and sources (the earliest). A retired
    conversion still takes part: where it wins, its order is settled and not sent again."""
    everything = [c for s in state.snapshots.values() for c in s.conversions]
    everything += state.direct_conversions.values()
    winners: dict[str, ConversionRecord] = {}
    for c in sorted(everything, key=lambda c: (c.occurred_at, c.event_id)):
        retired = state.retired_orders.get(c.order_id)
        if retired is not None and (retired[0], retired[1]) <= (c.occurred_at, c.event_id):
            continue
        winners.setdefault(c.order_id, c)
    return sorted(winners.values(), key=lambda c: (c.occurred_at, c.event_id))


def touches(state: SubscriberState, view_through: bool) -> list[tuple[Touch, SubscriberSnapshot]]:
    out = []
    for snap in state.snapshots.values():
        window = attribution_window(snap.attribution_window_hours)
        for t in snap.touches:
            if t.kind == "delivery" and not view_through:
                continue
            out.append(
                (
                    Touch(
                        t.touch_id, snap.message_id, snap.campaign, t.occurred_at, window, t.kind
                    ),
                    snap,
                )
            )
    return out


def credit_sets(
    state: SubscriberState, view_through: bool = False, half_life_hours: Decimal = Decimal(168)
) -> list[ConversionCredits]:
    available = [t for t, _ in touches(state, view_through)]
    version = state.version
    out = []
    # model_construct: every value here is already typed (the state's records were validated
    # when they came in); validating the ~10 credit sets of each conversion again on every
    # step was a fifth of the stage's time.
    for c in conversions(state):
        eligible = tuple(eligible_touches(available, c.occurred_at))
        for model in Model:
            credits = credits_of_eligible(model, eligible, c.occurred_at, half_life_hours)
            out.append(
                ConversionCredits.model_construct(
                    account=state.account,
                    recipient_hash=state.recipient_hash,
                    order_id=c.order_id,
                    conversion_event_id=c.event_id,
                    source_message_id=c.message_id,
                    name=c.name,
                    converted_at=c.occurred_at,
                    amount=c.amount,
                    currency=c.currency,
                    model=model,
                    version=version,
                    credits=[
                        CreditLine.model_construct(
                            touch_id=cr.touch.touch_id,
                            kind=cr.touch.kind,
                            message_id=cr.touch.message_id,
                            campaign=cr.touch.campaign,
                            touched_at=cr.touch.occurred_at,
                            weight=cr.weight,
                        )
                        for cr in credits
                    ],
                )
            )
    return out


def deliveries(state: SubscriberState) -> list[tuple[datetime, str, str, str]]:
    """(delivered at, touch id, message id, sender) of every delivery, oldest first."""
    return sorted(
        (t.occurred_at, t.touch_id, snap.message_id, snap.sender)
        for snap in state.snapshots.values()
        for t in snap.touches
        if t.kind == "delivery"
    )


def inbound_attribution(state: SubscriberState) -> list[tuple[str, Inbound, str]]:
    """(inbound id, inbound, message id it answers or "") in time order: the last message the
    same sender delivered to the subscriber at or before it."""
    delivered = deliveries(state)
    out = []
    for key, inbound in sorted(state.inbound.items(), key=lambda kv: (kv[1].occurred_at, kv[0])):
        answered = [d for d in delivered if d[3] == inbound.sender and d[0] <= inbound.occurred_at]
        out.append((key, inbound, answered[-1][2] if answered else ""))
    return out


def responses(state: SubscriberState) -> list[MessageResponse]:
    # Every key that may ever have held a response gets a row (zeros included), so a response
    # that moves to another message - when an earlier delivery arrives late - leaves no stale
    # row behind in the upserted table.
    by_message: dict[tuple[str, str], list[Inbound]] = {
        (snap.message_id, snap.sender): [] for snap in state.snapshots.values()
    }
    for sender in {i.sender for i in state.inbound.values()} | {
        s.sender for s in state.snapshots.values()
    }:
        by_message[("", sender)] = []
    for _, inbound, message_id in inbound_attribution(state):
        by_message[(message_id, inbound.sender)].append(inbound)
    version = state.version
    out = []
    for (message_id, sender), items in sorted(by_message.items()):
        opt_outs = [i for i in items if i.kind is InboundKind.OPT_OUT]
        out.append(
            MessageResponse(
                account=state.account,
                recipient_hash=state.recipient_hash,
                message_id=message_id,
                sender=sender,
                version=version,
                opt_outs=len(opt_outs),
                first_opt_out_at=opt_outs[0].occurred_at if opt_outs else None,
                opt_ins=sum(i.kind is InboundKind.OPT_IN for i in items),
                help_requests=sum(i.kind is InboundKind.HELP for i in items),
                replies=sum(i.kind is InboundKind.REPLY for i in items),
                first_response_at=items[0].occurred_at if items else None,
            )
        )
    return out
