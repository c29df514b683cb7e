"""One step of the attribution stage for one input, over the subscriber's stored state. Pure:
the worker (worker_app.py) loads, calls `step`, stores and sends what it returns; the tests
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
    if not changed:
        # A repeat sends nothing: its first arrival's outputs were committed with the state
        # that says it was applied (worker_app.py; a replay after a crash starts before it).
        return StepOutput(state, bool(retired), False, retired=retired)
    advance(state, item, offset, now)
    credits = credit_sets(state, config.view_through, config.half_life_hours)
    answers = responses(state)
    gone = withdrawals(before_credits, credits, state.version)
    credits = changed_content(before_credits, credits) + gone
    had_answer = answered(before_responses)
    answers = [
        r
        for r in changed_content(before_responses, answers)
        if not is_empty(r) or (r.message_id, r.sender) in had_answer
    ]
    # A response row is upserted by (message, sender); a missing row reads as no answer. So a
    # changed row is sent when it has an answer, or when the key had one before (the answer
    # moved to another message); a key that never had an answer is not sent as zeros (it was
    # 0.6 records per input event).
    return StepOutput(state, True, True, credits, answers, None, retired)


def is_empty(response: MessageResponse) -> bool:
    return not (response.opt_outs or response.opt_ins or response.help_requests or response.replies)


def answered(responses: list[MessageResponse]) -> set[tuple[str, str]]:
    """Keys whose last row says the message was answered."""
    return {(r.message_id, r.sender) for r in responses if not is_empty(r)}


def withdrawals(
    before: list[ConversionCredits], after: list[ConversionCredits], version: int
) -> list[ConversionCredits]:
    """Credit sets of orders that were conversions before this step and are not any more (the
    join's message kept an earlier conversion of the same click and name): each is sent once
    more, withdrawn, so the sink's latest row of it says so. Retired orders are not among
    `before` (retire runs first), so a retirement withdraws nothing."""
    current = {c.order_id for c in after}
    return [
        c.model_copy(update={"version": version, "credits": [], "withdrawn": True})
        for c in before
        if c.order_id not in current
    ]


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
