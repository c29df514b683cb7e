"""Attribution of one conversion to a subscriber's SMS touches. Pure: no Kafka here.

Conventions (DOMAIN.md; those of DP6 `marketing-attribution-models` 2.x):
  - a touch is eligible if 0 <= conversion time - touch time <= the window of the touch's
    campaign (the window is anchored on the touch);
  - touches are ordered by (event time, touch id), so ties in time break by id;
  - last click / first click: all credit to the latest / earliest touch;
  - linear: 1/n each;
  - time decay: weight 0.5 ** (hours before the conversion / half-life), normalised;
  - position based: 1 touch -> 1; 2 -> 0.5 / 0.5; more -> 0.4 first, 0.4 last, 0.2 shared by
    the middle ones.
Weights are Decimals quantised to CREDIT_PLACES; the rounding residual goes to one touch
(the largest weight, the latest on a tie), so the credits of a conversion sum to exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache

from schemas.attribution_credit import AttributionModel

Model = AttributionModel  # the vocabulary lives in schemas/, with the records that name it


CREDIT_PLACES = 20
_QUANTUM = Decimal(1).scaleb(-CREDIT_PLACES)
_CTX = Context(prec=50, rounding=ROUND_HALF_EVEN)
DEFAULT_WINDOW = timedelta(days=7)


def attribution_window(hours: int | None) -> timedelta:
    """A campaign's attribution window: the hours its sends carry, else the default."""
    return timedelta(hours=hours) if hours else DEFAULT_WINDOW


DEFAULT_HALF_LIFE_HOURS = Decimal(168)


@dataclass(frozen=True)
class Touch:
    touch_id: str  # the click's (or delivery receipt's) event id
    message_id: str
    campaign: str
    occurred_at: datetime
    window: timedelta = DEFAULT_WINDOW
    kind: str = "click"  # "click", or "delivery" for view-through


@dataclass(frozen=True)
class Credit:
    model: Model
    touch: Touch
    weight: Decimal


def eligible_touches(touches: list[Touch], converted_at: datetime) -> list[Touch]:
    inside = [t for t in touches if timedelta(0) <= converted_at - t.occurred_at <= t.window]
    return sorted(inside, key=lambda t: (t.occurred_at, t.touch_id))


def _exact(raw: list[Decimal]) -> list[Decimal]:
    """Normalise to sum 1, quantise, and hand the residual to the largest (latest on ties)."""
    total = sum(raw, Decimal(0))
    weights = [_CTX.divide(w, total).quantize(_QUANTUM, context=_CTX) for w in raw]
    residual = Decimal(1) - sum(weights, Decimal(0))
    if residual:
        pick = max(range(len(weights)), key=lambda i: (weights[i], i))
        weights[pick] += residual
    return weights


def _raw_weights(
    model: Model, touches: list[Touch], converted_at: datetime, half_life_hours: Decimal
) -> list[Decimal]:
    n = len(touches)
    if model is Model.LAST_CLICK:
        return [Decimal(0)] * (n - 1) + [Decimal(1)]
    if model is Model.FIRST_CLICK:
        return [Decimal(1)] + [Decimal(0)] * (n - 1)
    if model is Model.LINEAR:
        return [Decimal(1)] * n
    if model is Model.TIME_DECAY:
        weights = []
        for t in touches:
            seconds = Decimal((converted_at - t.occurred_at) // timedelta(microseconds=1)) / 10**6
            hours = _CTX.divide(seconds, Decimal(3600))
            weights.append(_CTX.power(Decimal("0.5"), _CTX.divide(hours, half_life_hours)))
        return weights
    if model is Model.POSITION_BASED:
        if n == 1:
            return [Decimal(1)]
        if n == 2:
            return [Decimal("0.5"), Decimal("0.5")]
        middle = _CTX.divide(Decimal("0.2"), Decimal(n - 2))
        return [Decimal("0.4")] + [middle] * (n - 2) + [Decimal("0.4")]
    raise ValueError(f"unknown model {model}")


def attribute(
    model: Model,
    touches: list[Touch],
    converted_at: datetime,
    half_life_hours: Decimal = DEFAULT_HALF_LIFE_HOURS,
) -> list[Credit]:
    """Credits of one conversion under one model; empty when no touch is in its window."""
    eligible = eligible_touches(touches, converted_at)
    if not eligible:
        return []
    raw = _raw_weights(model, eligible, converted_at, half_life_hours)
    return [Credit(model, t, w) for t, w in zip(eligible, _exact(raw), strict=True) if w != 0]


@lru_cache(maxsize=16_384)
def credits_of_eligible(
    model: Model,
    eligible: tuple[Touch, ...],
    converted_at: datetime,
    half_life_hours: Decimal = DEFAULT_HALF_LIFE_HOURS,
) -> tuple[Credit, ...]:
    """`attribute` on touches already known eligible, memoised. A subscriber step computes
    every conversion's credits before and after the input, and most conversions keep their
    touches: without the memo the time-decay powers were 35 % of a step (profile of the
    subscriber retention property test, 30 messages to one subscriber)."""
    return tuple(attribute(model, list(eligible), converted_at, half_life_hours))


def attribute_all(
    touches: list[Touch],
    converted_at: datetime,
    half_life_hours: Decimal = DEFAULT_HALF_LIFE_HOURS,
) -> dict[Model, list[Credit]]:
    return {m: attribute(m, touches, converted_at, half_life_hours) for m in Model}
