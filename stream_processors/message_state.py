"""Per-message join state and the rows built from it. Pure: no Kafka here.

Invariant (what the property tests check): the state is the *set* of the message's distinct
events (keyed by event id; a repeat changes nothing), and every output - the funnel row, the
subscriber snapshot - is a function of that set alone, never of arrival order. Decisions that
depend on several events (which receipt is final, whether a click was a preview fetched on
delivery, which of two conversions for one order counts) are taken when the row is built.

Rules, from DOMAIN.md:
  - delivery status: a real final beats `unknown` beats an intermediate; within a rank the
    later event time wins, ties by event id. Multipart messages whose receipts name their part:
    delivered only when every part is; failed as soon as one part fails finally; `unknown` when
    every part has a final status, none failed and some are unknown; otherwise still submitted.
  - clicks: all distinct clicks count; human clicks exclude HEAD requests, bot user agents and
    clicks within 2 s of delivery.
  - conversions: one per order id (the earliest by event time, then event id); then one per
    (click id, conversion name). The rest are counted as discarded duplicates. Of those kept,
    a conversion counts only inside the campaign's attribution window from the click whose
    click id it carries (from the send while that click is unknown); later ones are counted
    apart (after_window_conversions) and written out as late (`after_window`) once their click
    is known.
  - horizon: once the send is known, events later than send time + two attribution windows
    (a click at the end of the window, then a conversion a window after it) cannot count;
    rows and snapshots are built from the in-horizon events only, and the others are reported
    as late (`after_window`). Decided by event times alone, so arrival order cannot matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from schemas.delivery_status import (
    FAILED,
    FINAL_STATUSES,
    DeliveryStatus,
    FailureCause,
    receipt_precedence,
)
from schemas.events import (
    ClickEvent,
    ConversionEvent,
    DeliveryReceiptEvent,
    EngagementEvent,
    LandingEvent,
    MessageEventBase,
    SendEvent,
)
from schemas.funnel_row import FunnelRow
from schemas.subscriber_activity import ConversionRecord, SubscriberSnapshot, TouchRecord
from stream_processors.attribution import attribution_window
from stream_processors.click_classification import non_human_reason, request_flag


@dataclass(frozen=True)
class Receipt:
    status: DeliveryStatus
    occurred_at: datetime
    event_id: str
    cause: FailureCause = FailureCause.NONE
    part_id: str = ""

    def precedence(self) -> tuple:
        return receipt_precedence(self.status, self.occurred_at, self.event_id)


@dataclass(frozen=True)
class Click:
    occurred_at: datetime
    click_id: str
    flag: str  # why the request is not human, '' when it may be


@dataclass(frozen=True)
class Conversion:
    occurred_at: datetime
    order_id: str
    click_id: str
    name: str
    amount: Decimal
    currency: str


@dataclass
class MessageState:
    account: str
    message_id: str
    send: SendEvent | None = None
    receipts: dict[str, Receipt] = field(default_factory=dict)
    clicks: dict[str, Click] = field(default_factory=dict)
    landings: dict[str, datetime] = field(default_factory=dict)
    engagements: dict[str, datetime] = field(default_factory=dict)
    conversions: dict[str, Conversion] = field(default_factory=dict)
    other_sends: set[str] = field(default_factory=set)  # ids of sends that lost the tie-break
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    # Bookkeeping, not part of the event set: the partition whose changelog holds this state,
    # so the eviction schedule can be rebuilt from the table after a restart; and the input
    # (topic, offset) of its last change, so it is evicted only once that is committed.
    partition: int = -1
    changed_at: tuple[str, int] | None = None
    # An orphan whose late records were written by the step at this input (topic, offset): it
    # becomes a closed marker once that is committed (eviction.EventTimeEviction.orphan_step).
    closing: tuple[str, int] | None = None
    # The stored form of `send` as decoded, written back as it is while `send` is that same
    # object: dumping the send model again on every write was most of `to_bytes`.
    send_doc: tuple[SendEvent, dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def seen(self) -> set[str]:
        ids = set(self.receipts) | set(self.clicks) | set(self.landings)
        ids |= set(self.engagements) | set(self.conversions) | self.other_sends
        if self.send is not None:
            ids.add(self.send.event_id)
        return ids

    # ---- serialisation for the state store (raw bytes: we own the format) ----------------
    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "a": self.account,
                "m": self.message_id,
                "send": self._send_json(),
                "other_sends": sorted(self.other_sends),
                "r": {
                    k: [r.status.value, r.occurred_at.isoformat(), r.cause.value, r.part_id]
                    for k, r in self.receipts.items()
                },
                "c": {
                    k: [c.occurred_at.isoformat(), c.click_id, c.flag]
                    for k, c in self.clicks.items()
                },
                "l": {k: t.isoformat() for k, t in self.landings.items()},
                "e": {k: t.isoformat() for k, t in self.engagements.items()},
                "v": {
                    k: [
                        v.occurred_at.isoformat(),
                        v.order_id,
                        v.click_id,
                        v.name,
                        str(v.amount),
                        v.currency,
                    ]
                    for k, v in self.conversions.items()
                },
                "first": _iso(self.first_event_at),
                "last": _iso(self.last_event_at),
                "p": self.partition,
                "o": list(self.changed_at) if self.changed_at else None,
                "x": list(self.closing) if self.closing else None,
            }
        )

    def _send_json(self) -> dict[str, Any] | None:
        if self.send is None:
            return None
        if self.send_doc is not None and self.send_doc[0] is self.send:
            return self.send_doc[1]
        return self.send.model_dump(mode="json")

    @classmethod
    def from_bytes(cls, payload: bytes) -> MessageState:
        d = orjson.loads(payload)
        dt = datetime.fromisoformat
        send = SendEvent.model_validate(d["send"]) if d["send"] else None
        return cls(
            account=d["a"],
            message_id=d["m"],
            send=send,
            send_doc=(send, d["send"]) if send is not None else None,
            other_sends=set(d["other_sends"]),
            receipts={
                k: Receipt(DeliveryStatus(s), dt(t), k, FailureCause(c), p)
                for k, (s, t, c, p) in d["r"].items()
            },
            clicks={k: Click(dt(t), cid, f) for k, (t, cid, f) in d["c"].items()},
            landings={k: dt(t) for k, t in d["l"].items()},
            engagements={k: dt(t) for k, t in d["e"].items()},
            conversions={
                k: Conversion(dt(t), o, c, n, Decimal(a), cur)
                for k, (t, o, c, n, a, cur) in d["v"].items()
            },
            first_event_at=_dt(d["first"]),
            last_event_at=_dt(d["last"]),
            partition=d.get("p", -1),
            changed_at=tuple(d["o"]) if d.get("o") else None,  # type: ignore[arg-type]
            closing=tuple(d["x"]) if d.get("x") else None,  # type: ignore[arg-type]
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def state_key(account: str, message_id: str) -> bytes:
    """Table key: the tenant is part of it, so two accounts' message ids never share state."""
    return f"{account}\x1f{message_id}".encode()


def apply_event(state: MessageState | None, event: MessageEventBase) -> tuple[MessageState, bool]:
    """Fold one event into the message's state. Returns (state, changed); a repeat of an
    event id already folded returns the state unchanged and changed=False."""
    if state is None:
        state = MessageState(account=event.account, message_id=event.message_id)
    if event.event_id in state.seen:
        return state, False
    t = event.occurred_at
    state.first_event_at = t if state.first_event_at is None else min(state.first_event_at, t)
    state.last_event_at = t if state.last_event_at is None else max(state.last_event_at, t)
    if isinstance(event, SendEvent):
        # Two sends for one message id: keep the earliest (then least event id), remember the
        # other's id so its repeat is still recognised.
        if state.send is None or (t, event.event_id) < (
            state.send.occurred_at,
            state.send.event_id,
        ):
            if state.send is not None:
                state.other_sends.add(state.send.event_id)
            state.send = event
        else:
            state.other_sends.add(event.event_id)
    elif isinstance(event, DeliveryReceiptEvent):
        state.receipts[event.event_id] = Receipt(
            event.status, t, event.event_id, event.failure_cause, event.part_id
        )
    elif isinstance(event, ClickEvent):
        state.clicks[event.event_id] = Click(
            t, event.click_id, request_flag(event.method, event.user_agent)
        )
    elif isinstance(event, LandingEvent):
        state.landings[event.event_id] = t
    elif isinstance(event, EngagementEvent):
        state.engagements[event.event_id] = t
    elif isinstance(event, ConversionEvent):
        state.conversions[event.event_id] = Conversion(
            t, event.order_id, event.click_id, event.name, event.amount, event.currency
        )
    else:  # pragma: no cover - the schema admits no other message event
        raise TypeError(f"not a message event: {type(event).__name__}")
    return state, True


# ---- derived views of the state ----------------------------------------------------------


def best_receipt(receipts: list[Receipt]) -> Receipt | None:
    return max(receipts, key=Receipt.precedence, default=None)


def message_receipt(state: MessageState) -> Receipt | None:
    """The receipt that decides the message's delivery status (see module rules)."""
    receipts = list(state.receipts.values())
    parts = state.send.parts if state.send else 1
    if parts <= 1:
        return best_receipt(receipts)
    by_part: dict[str, list[Receipt]] = {}
    for r in receipts:
        by_part.setdefault(r.part_id, []).append(r)
    if parts <= 1 or "" in by_part or not by_part:
        return best_receipt(receipts)
    part_best = [r for r in (best_receipt(rs) for rs in by_part.values()) if r is not None]
    failed = [r for r in part_best if r.status in FAILED]
    if failed:  # one part failed finally: the message failed
        return best_receipt(failed)
    delivered = [r for r in part_best if r.status is DeliveryStatus.DELIVERED]
    if len(delivered) >= parts:  # every part delivered: delivered when the last one was
        return max(delivered, key=lambda r: (r.occurred_at, r.event_id))
    unknown = [r for r in part_best if r.status is DeliveryStatus.UNKNOWN]
    if unknown and len(part_best) >= parts and all(r.status in FINAL_STATUSES for r in part_best):
        return best_receipt(unknown)
    # Some parts are still in flight (or unreported): the message is submitted, not delivered.
    latest = max(part_best, key=lambda r: (r.occurred_at, r.event_id))
    return Receipt(DeliveryStatus.SUBMITTED, latest.occurred_at, latest.event_id)


def delivered_at(state: MessageState, receipt: Receipt | None = None) -> datetime | None:
    """When the message was delivered; `receipt`: its message_receipt, when already known."""
    receipt = receipt or message_receipt(state)
    if receipt is not None and receipt.status is DeliveryStatus.DELIVERED:
        return receipt.occurred_at
    return None


def human_clicks(state: MessageState, receipt: Receipt | None = None) -> list[tuple[str, Click]]:
    """The clicks that may be a person's, by time; `receipt` as in delivered_at."""
    if not state.clicks:
        return []
    at = delivered_at(state, receipt)
    return sorted(
        (
            (k, c)
            for k, c in state.clicks.items()
            if not non_human_reason(c.flag, c.occurred_at, at)
        ),
        key=lambda kc: (kc[1].occurred_at, kc[0]),
    )


def effective_conversions(state: MessageState) -> list[tuple[str, Conversion]]:
    """One per order id, then one per (click id, name): the earliest by (time, event id)."""
    ordered = sorted(state.conversions.items(), key=lambda kv: (kv[1].occurred_at, kv[0]))
    orders: set[str] = set()
    click_names: set[tuple[str, str]] = set()
    kept = []
    for event_id, c in ordered:
        if c.order_id in orders:
            continue
        if c.click_id and (c.click_id, c.name) in click_names:
            continue
        orders.add(c.order_id)
        if c.click_id:
            click_names.add((c.click_id, c.name))
        kept.append((event_id, c))
    return kept


def clicked_at(state: MessageState, c: Conversion) -> datetime | None:
    """When the click whose click id the conversion carries happened; None while unknown."""
    if c.click_id:
        for click in state.clicks.values():
            if click.click_id == c.click_id:
                return click.occurred_at
    return None


def message_window(state: MessageState) -> timedelta:
    return attribution_window(state.send.attribution_window_hours if state.send else None)


def split_by_window(
    state: MessageState,
) -> tuple[list[tuple[str, Conversion]], list[tuple[str, Conversion]]]:
    """The effective conversions (one per order, then per click and name), as (inside the
    campaign's attribution window from the click each carries, after it) (DOMAIN.md: a
    message's conversions are window-bound; later ones are their own figure). While that click
    is unknown the window runs from the send: a conversion inside the window after the send is
    inside it after any later click, so this never counts one that will not count."""
    window = message_window(state)
    sent_at = state.send.occurred_at if state.send is not None else None
    inside: list[tuple[str, Conversion]] = []
    after: list[tuple[str, Conversion]] = []
    for event_id, c in effective_conversions(state):
        anchor = clicked_at(state, c) or sent_at
        late = anchor is not None and c.occurred_at - anchor > window
        (after if late else inside).append((event_id, c))
    return inside, after


def decided_after_window(state: MessageState) -> list[tuple[str, str, datetime]]:
    """(event id, 'conversion', time) of every conversion event in the horizon, repeats of an
    order included, that happened after the window from the click it carries, that click and
    the send (which says the window) being known: a fact of the event, its click and its send,
    so it never changes and arrival order cannot matter (which of an order's reports counts is
    the row's business). A conversion that carries no click (a redeemed promo code) has its
    window from the send, as in the row."""
    if state.send is None or not state.conversions:
        return []  # most folds: no need to cut the state to its horizon
    state = within_horizon(state)
    assert state.send is not None
    window = message_window(state)
    out = []
    for k, c in state.conversions.items():
        at = clicked_at(state, c) if c.click_id else state.send.occurred_at
        if at is not None and c.occurred_at - at > window:
            out.append((k, "conversion", c.occurred_at))
    return out


def _revenue(conversions: list[tuple[str, Conversion]]) -> dict[str, Decimal]:
    revenue: dict[str, Decimal] = {}
    for _, c in conversions:
        revenue[c.currency] = revenue.get(c.currency, Decimal(0)) + c.amount
    return dict(sorted(revenue.items()))


def local_send_time(sent_at: datetime, zone: str) -> tuple[int, int]:
    """(hour 0-23, weekday 1 Monday-7 Sunday) of the send in the recipient's zone; UTC when the
    zone is unknown."""
    local = sent_at.astimezone(ZoneInfo(zone or "UTC"))
    return local.hour, local.isoweekday()


# ---- the message's horizon ----------------------------------------------------------------


def send_horizon(sent_at: datetime, window_hours: int | None) -> datetime:
    """Send time + two attribution windows of its campaign (a 24 h flash sale sets the
    window on its sends)."""
    return sent_at + 2 * attribution_window(window_hours)


def horizon(state: MessageState) -> datetime | None:
    """The last event time that can still count for this message; None before the send."""
    if state.send is None:
        return None
    return send_horizon(state.send.occurred_at, state.send.attribution_window_hours)


# A message's events happen after its send; the grace allows for clocks that disagree (SMPP
# receipt dates have minute resolution) when deciding that a send can no longer come.
ORPHAN_GRACE = timedelta(hours=1)


def hold_until(state: MessageState) -> datetime:
    """Event time up to which the state is worth holding: the horizon; for a message whose send
    has not come (an orphan so far), its first event plus ORPHAN_GRACE - a send stamped later
    than that is not this message's send, and one arriving after the allowed lateness is late
    either way."""
    end = horizon(state)
    if end is not None:
        return end
    assert state.first_event_at is not None
    return state.first_event_at + ORPHAN_GRACE


def hold_until_from_bytes(raw: bytes) -> tuple[int, datetime, tuple[str, int] | None]:
    """(partition, hold_until, closing) of a stored state without building it: the schedule
    rebuild after a restart reads every state, and full validation of each send would
    dominate."""
    d = orjson.loads(raw)
    send = d["send"]
    closing = tuple(d["x"]) if d.get("x") else None
    if send:
        sent_at = datetime.fromisoformat(send["occurred_at"])
        hold = send_horizon(sent_at, send.get("attribution_window_hours"))
        return d.get("p", -1), hold, closing  # type: ignore[return-value]
    return d.get("p", -1), datetime.fromisoformat(d["first"]) + ORPHAN_GRACE, closing  # type: ignore[return-value]


def timed_events(state: MessageState) -> list[tuple[str, str, datetime]]:
    """(event id, event type, time) of every distinct event but the sends."""
    out = [(k, "delivery_receipt", r.occurred_at) for k, r in state.receipts.items()]
    out += [(k, "click", c.occurred_at) for k, c in state.clicks.items()]
    out += [(k, "landing", t) for k, t in state.landings.items()]
    out += [(k, "engagement", t) for k, t in state.engagements.items()]
    out += [(k, "conversion", c.occurred_at) for k, c in state.conversions.items()]
    return sorted(out, key=lambda e: (e[2], e[0]))


def beyond_horizon(state: MessageState) -> list[tuple[str, str, datetime]]:
    end = horizon(state)
    return [] if end is None else [e for e in timed_events(state) if e[2] > end]


def within_horizon(state: MessageState) -> MessageState:
    """The state without the events past its horizon (itself when there are none)."""
    end = horizon(state)
    if end is None or state.last_event_at is None or state.last_event_at <= end:
        return state
    assert state.send is not None
    times = [state.send.occurred_at] + [t for _, _, t in timed_events(state) if t <= end]
    return MessageState(
        account=state.account,
        message_id=state.message_id,
        send=state.send,
        receipts={k: r for k, r in state.receipts.items() if r.occurred_at <= end},
        clicks={k: c for k, c in state.clicks.items() if c.occurred_at <= end},
        landings={k: t for k, t in state.landings.items() if t <= end},
        engagements={k: t for k, t in state.engagements.items() if t <= end},
        conversions={k: c for k, c in state.conversions.items() if c.occurred_at <= end},
        other_sends=state.other_sends,
        first_event_at=min(times),
        last_event_at=max(times),
    )


def funnel_row(state: MessageState) -> FunnelRow:
    version = len(state.seen)  # grows with every distinct event, counted or not
    state = within_horizon(state)
    send = state.send
    assert state.first_event_at is not None and state.last_event_at is not None
    receipt = message_receipt(state)
    humans = human_clicks(state, receipt)
    conversions, after_window = split_by_window(state)
    local = local_send_time(send.occurred_at, send.recipient_timezone) if send else (0, 0)
    return FunnelRow(
        account=state.account,
        message_id=state.message_id,
        version=version,
        has_send=send is not None,
        campaign=send.campaign if send else "",
        variant=send.variant if send else "",
        segment=send.segment if send else "",
        sender=send.sender if send else "",
        recipient_hash=send.recipient_hash if send else "",
        country=send.country if send else "",
        carrier=send.carrier if send else "",
        sent_at=send.occurred_at if send else None,
        recipient_timezone=send.recipient_timezone if send else "",
        send_local_hour=local[0],
        send_local_weekday=local[1],
        parts=send.parts if send else 0,
        cost=send.cost if send else Decimal(0),
        cost_currency=send.currency if send else "",
        delivery_status=receipt.status if receipt else None,
        delivery_status_at=receipt.occurred_at if receipt else None,
        failure_cause=receipt.cause if receipt else FailureCause.NONE,
        receipts=len(state.receipts),
        clicks=len(state.clicks),
        human_clicks=len(humans),
        first_click_at=min((c.occurred_at for c in state.clicks.values()), default=None),
        first_human_click_at=humans[0][1].occurred_at if humans else None,
        landings=len(state.landings),
        engagements=len(state.engagements),
        conversions=len(conversions),
        discarded_conversions=len(state.conversions) - len(conversions) - len(after_window),
        revenue=_revenue(conversions),
        after_window_conversions=len(after_window),
        after_window_revenue=_revenue(after_window),
        attribution_window_hours=message_window(state) // timedelta(hours=1) if send else 0,
        order_ids=[c.order_id for _, c in conversions],
        first_event_at=state.first_event_at,
        last_event_at=state.last_event_at,
    )


# What a subscriber snapshot says of a message besides its version: (recipient hash, campaign,
# sender, send time, window, human clicks as (touch id, time, click id), the delivery as
# (receipt id, time) or None, the effective conversions as (event id, conversion)).
SnapshotContent = tuple[
    str,
    str,
    str,
    datetime,
    int | None,
    tuple[tuple[str, datetime, str], ...],
    tuple[str, datetime] | None,
    tuple[tuple[str, Conversion], ...],
]


def snapshot_content(state: MessageState) -> SnapshotContent | None:
    """The content of the state's subscriber snapshot as plain values: the join compares it
    before and after each event (two snapshot models per event were a tenth of its time) and
    builds the model only for what it sends. None until the send (which names the subscriber)
    is known."""
    if state.send is None:
        return None
    state = within_horizon(state)
    send = state.send
    assert send is not None
    receipt = message_receipt(state)
    delivered = receipt is not None and receipt.status is DeliveryStatus.DELIVERED
    return (
        send.recipient_hash,
        send.campaign,
        send.sender,
        send.occurred_at,
        send.attribution_window_hours,
        tuple((k, c.occurred_at, c.click_id) for k, c in human_clicks(state, receipt)),
        (receipt.event_id, receipt.occurred_at) if delivered and receipt is not None else None,
        tuple(effective_conversions(state)),
    )


def snapshot_from(state: MessageState, content: SnapshotContent) -> SubscriberSnapshot:
    """The snapshot model of `content`, the state's own (snapshot_content)."""
    recipient_hash, campaign, sender, sent_at, window, clicks, delivery, conversions = content
    touches = [
        TouchRecord(kind="click", touch_id=k, occurred_at=at, click_id=click_id)
        for k, at, click_id in clicks
    ]
    if delivery is not None:
        touches.append(TouchRecord(kind="delivery", touch_id=delivery[0], occurred_at=delivery[1]))
    return SubscriberSnapshot(
        account=state.account,
        recipient_hash=recipient_hash,
        message_id=state.message_id,
        version=len(state.seen),
        campaign=campaign,
        sender=sender,
        sent_at=sent_at,
        attribution_window_hours=window,
        touches=touches,
        conversions=[
            ConversionRecord(
                event_id=k,
                occurred_at=c.occurred_at,
                order_id=c.order_id,
                name=c.name,
                amount=c.amount,
                currency=c.currency,
                message_id=state.message_id,
            )
            for k, c in conversions
        ],
    )


def subscriber_snapshot(state: MessageState) -> SubscriberSnapshot | None:
    """What the attribution stage needs of this message, re-keyed by subscriber. None until
    the send (which names the subscriber) is known."""
    content = snapshot_content(state)
    return snapshot_from(state, content) if content is not None else None
