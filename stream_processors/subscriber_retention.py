"""When the attribution stage may forget part of a subscriber's state. Pure: no Kafka here.

Without this a subscriber's state holds every message ever sent to them (~1.2 KB each): it
grows with every campaign. What no input inside the allowed lateness can change any more is
retired, and what retiring leaves behind keeps every output as it was.

The clock is per subscriber: the newest event time of any input applied to the state (`C`).
An input whose event time is more than the allowed lateness (`L`) behind it is late: it is not
applied (`classify`), as the join does with events behind its watermark. So, for an input that
arrives less than `L` behind the newest one, retiring is invisible. Retired, in order:

1. A message's snapshot is *stripped* once `C` passes its send horizon (send + two windows:
   its last possible touch) + one window (that touch's reach) + `L`. No conversion in the
   lateness can be credited to its touches any more; it keeps its deliveries (inbound SMS
   answer them) and only the clicks an older conversion still credited afresh counts (one of
   a message with a longer window). Its conversions become `retired_orders` (order id, time,
   event id), which still win their order against later repeats from other sources.
2. A stripped snapshot is *dropped* once no future inbound SMS can answer it (a later delivery
   from the same sender is more than `L` behind `C`, or it has no delivery at all) and no live
   conversion counts one of its touches. The inbound
   SMS that answered it go with it; their response row is final. Its id stays in
   `retired_messages`, so a later snapshot of it is late, not a new message.
3. A subscriber-only conversion is retired `L` after its time: no touch inside the lateness can
   precede it.
Inbound SMS that answer no delivery are kept (rare, and their row can still grow). The markers
(`retired_orders`, `retired_messages`) are forgotten `marker_retention` after retirement.

Crash safety: retirement removes outputs from what a replay re-sends ("on a repeat, send
everything"). So a state is retired only when *quiet*: every change to it came from an input
offset the group has already committed, i.e. every output of it is durable (`durable`: the
committed offsets of this key's partition). A retirement is never in the same step as a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.events import InboundEvent, SubscriberConversionEvent
from schemas.subscriber_activity import SubscriberSnapshot
from stream_processors.attribution import attribution_window
from stream_processors.eviction import MAX_FUTURE_SKEW
from stream_processors.message_state import send_horizon
from stream_processors.subscriber_state import SubscriberState, deliveries, inbound_attribution

SNAPSHOTS, CONVERSIONS, INBOUND = "s", "c", "i"  # input kinds, as `SubscriberState.changed` keys

Input = SubscriberSnapshot | SubscriberConversionEvent | InboundEvent


def input_kind(item: Input) -> str:
    if isinstance(item, SubscriberSnapshot):
        return SNAPSHOTS
    return CONVERSIONS if isinstance(item, SubscriberConversionEvent) else INBOUND


def event_time(item: Input) -> datetime:
    """A snapshot's time is its newest event (the send, a touch or a conversion)."""
    if isinstance(item, SubscriberSnapshot):
        return max(
            [item.sent_at]
            + [t.occurred_at for t in item.touches]
            + [c.occurred_at for c in item.conversions]
        )
    return item.occurred_at


def classify(state: SubscriberState | None, item: Input, lateness: timedelta) -> str | None:
    """Why `item` must not be applied ("window_closed"), or None to apply it."""
    if state is None:
        return None
    if isinstance(item, SubscriberSnapshot):
        if item.message_id in state.stripped or item.message_id in state.retired_messages:
            return "window_closed"
        return None
    if state.clock is not None and item.occurred_at + lateness < state.clock:
        return "window_closed"
    return None


def advance(state: SubscriberState, item: Input, offset: int, now: datetime) -> None:
    """After `item` changed the state: move the clock, remember the offset of the change."""
    t = min(event_time(item), now + MAX_FUTURE_SKEW)
    if state.clock is None or t > state.clock:
        state.clock = t
    state.changed[input_kind(item)] = offset


@dataclass
class Retired:
    stripped: int = 0
    dropped: int = 0
    conversions: int = 0
    inbound: int = 0
    markers: int = 0

    def __bool__(self) -> bool:
        return any((self.stripped, self.dropped, self.conversions, self.inbound, self.markers))


def quiet(state: SubscriberState, durable: Mapping[str, int]) -> bool:
    """Every change came from an input offset below the group's committed offset."""
    return all(offset < durable.get(kind, -1) for kind, offset in state.changed.items())


def _reach(snap: SubscriberSnapshot) -> datetime:
    window = attribution_window(snap.attribution_window_hours)
    return send_horizon(snap.sent_at, snap.attribution_window_hours) + window


def retire(
    state: SubscriberState,
    durable: Mapping[str, int],
    lateness: timedelta,
    marker_retention: timedelta,
) -> Retired:
    """Retire what the clock allows, when the state is quiet; what was retired."""
    done = Retired()
    clock = state.clock
    if clock is None or not quiet(state, durable):
        return done
    for message_id, snap in list(state.snapshots.items()):
        if message_id in state.stripped or _reach(snap) + lateness >= clock:
            continue
        forget = _reach(snap) + lateness + marker_retention
        for c in snap.conversions:
            _retire_order(state, c.order_id, c.occurred_at, c.event_id, forget)
        state.snapshots[message_id] = snap.model_copy(update={"conversions": []})
        state.stripped.add(message_id)
        done.stripped += 1
    for event_id, c in list(state.direct_conversions.items()):
        if c.occurred_at + lateness < clock:
            _retire_order(state, c.order_id, c.occurred_at, c.event_id, clock + marker_retention)
            del state.direct_conversions[event_id]
            state.retired_version += 1
            done.conversions += 1
    _cut_touches(state)
    _drop_answered(state, clock, lateness, marker_retention, done)
    for order_id, (_, _, forget) in list(state.retired_orders.items()):
        if forget < clock:
            del state.retired_orders[order_id]
            done.markers += 1
    for message_id, forget in list(state.retired_messages.items()):
        if forget < clock:
            del state.retired_messages[message_id]
            done.markers += 1
    return done


def _retire_order(
    state: SubscriberState, order_id: str, at: datetime, event_id: str, forget: datetime
) -> None:
    current = state.retired_orders.get(order_id)
    if current is None or (at, event_id) < (current[0], current[1]):
        state.retired_orders[order_id] = (at, event_id, forget)


def _live_conversion_times(state: SubscriberState) -> list[datetime]:
    return sorted(
        [
            c.occurred_at
            for message_id, snap in state.snapshots.items()
            if message_id not in state.stripped
            for c in snap.conversions
        ]
        + [c.occurred_at for c in state.direct_conversions.values()]
    )


def _needed(touch_at: datetime, window: timedelta, live: list[datetime]) -> bool:
    """Some conversion still credited afresh has this touch in its window: an older
    conversion of a message with a longer window can outlive the touches it counts."""
    return any(timedelta(0) <= c - touch_at <= window for c in live)


def _cut_touches(state: SubscriberState) -> None:
    """Stripped snapshots keep their deliveries (inbound SMS answer them) and the clicks a
    live conversion still counts."""
    live = _live_conversion_times(state)
    for message_id in state.stripped:
        snap = state.snapshots[message_id]
        window = attribution_window(snap.attribution_window_hours)
        kept = [
            t for t in snap.touches if t.kind == "delivery" or _needed(t.occurred_at, window, live)
        ]
        if len(kept) != len(snap.touches):
            state.snapshots[message_id] = snap.model_copy(update={"touches": kept})


def _drop_answered(
    state: SubscriberState,
    clock: datetime,
    lateness: timedelta,
    marker_retention: timedelta,
    done: Retired,
) -> None:
    delivered = deliveries(state)
    live = _live_conversion_times(state)
    closed: set[str] = set()
    for message_id in state.stripped:
        snap = state.snapshots[message_id]
        window = attribution_window(snap.attribution_window_hours)
        if any(t.kind == "click" or _needed(t.occurred_at, window, live) for t in snap.touches):
            continue  # a live conversion still counts one of its touches (view-through too)
        mine = [d[0] for d in delivered if d[2] == message_id]
        # a later delivery from the same sender, older than the lateness: every inbound SMS
        # still to come answers that one (or a later one), never this message
        if not mine or any(
            d[3] == snap.sender and d[0] > max(mine) and d[0] + lateness < clock for d in delivered
        ):
            closed.add(message_id)
    if not closed:
        return
    for inbound_id, _, message_id in inbound_attribution(state):
        if message_id in closed:
            del state.inbound[inbound_id]
            state.retired_version += 1
            done.inbound += 1
    for message_id in closed:
        snap = state.snapshots.pop(message_id)
        state.stripped.discard(message_id)
        state.retired_version += snap.version
        state.retired_messages[message_id] = _reach(snap) + lateness + marker_retention
        done.dropped += 1
