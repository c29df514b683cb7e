"""One step of the attribution stage for one input, over the subscriber's stored state. Pure:
the Faust agent (join_app.py) loads, calls `step`, stores and sends what it returns; the tests
run the same step over a dict.

Order within a step: retire what the (quiet) state allows, *then* decide whether the input is
late, apply it and compute what changed. Retiring first means a step's outputs are computed on
the state that is stored, and a retirement never shares a step with a change (see
subscriber_retention.py: why that keeps a replay after a crash whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from schemas.attribution_credit import ConversionCredits, MessageResponse
from schemas.late_event import LateEvent
from schemas.subscriber_activity import SubscriberSnapshot
from stream_processors.attribution import DEFAULT_HALF_LIFE_HOURS
from stream_processors.message_join import changed_content
from stream_processors.subscriber_retention import (
    Input,
    Retired,
    advance,
    classify,
    event_time,
    retire,
)
from stream_processors.subscriber_state import (
    SubscriberState,
    apply_snapshot,
    apply_subscriber_event,
    credit_sets,
    responses,
)


@dataclass(frozen=True)
class StageSettings:
    lateness: timedelta
    marker_retention: timedelta
    view_through: bool = False
    half_life_hours: Decimal = DEFAULT_HALF_LIFE_HOURS


@dataclass
class StepOutput:
    state: SubscriberState | None
    store: bool  # the state differs from what was loaded
    applied: bool  # the input changed the state (False: a repeat, or late)
    credits: list[ConversionCredits] = field(default_factory=list)
    responses: list[MessageResponse] = field(default_factory=list)
    late: LateEvent | None = None
    retired: Retired = field(default_factory=Retired)


def step(
    state: SubscriberState | None,
    item: Input,
    offset: int,
    now: datetime,
    durable: Mapping[str, int],
    config: StageSettings,
) -> StepOutput:
    retired = Retired()
    if state is not None:
        retired = retire(state, durable, config.lateness, config.marker_retention)
    reason = classify(state, item, config.lateness)
    if reason is not None:
        assert state is not None
        return StepOutput(state, bool(retired), False, late=_late(state, item), retired=retired)
    before_credits = (
        credit_sets(state, config.view_through, config.half_life_hours) if state else []
    )
    before_responses = responses(state) if state else []
    if isinstance(item, SubscriberSnapshot):
        state, changed = apply_snapshot(state, item)
    else:
        state, changed = apply_subscriber_event(state, item)
    if changed:
        advance(state, item, offset, now)
    credits = credit_sets(state, config.view_through, config.half_life_hours)
    answers = responses(state)
    if changed:
        credits = changed_content(before_credits, credits)
        answers = changed_content(before_responses, answers)
    # On a repeat (possibly a replay after a crash) everything current is sent again.
    return StepOutput(state, changed or bool(retired), changed, credits, answers, None, retired)


def _late(state: SubscriberState, item: Input) -> LateEvent:
    if isinstance(item, SubscriberSnapshot):
        message_id, event_id, event_type = (
            item.message_id,
            f"{item.message_id}#v{item.version}",
            "subscriber_snapshot",
        )
        payload, campaign = item.to_json().decode(), item.campaign
    else:
        message_id, event_id, event_type = "", item.event_id, item.event_type
        payload, campaign = item.model_dump_json(), ""
    return LateEvent(
        account=item.account,
        message_id=message_id,
        event_id=event_id,
        event_type=event_type,
        occurred_at=event_time(item),
        reason="window_closed",
        campaign=campaign,
        horizon=None,
        watermark=state.clock,
        payload=payload,
    )
