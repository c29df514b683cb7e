"""Each attribution model against journeys computed by hand (and, for time decay, with floats
in the test), plus the invariant that a conversion's credits sum to exactly 1."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from stream_processors.attribution import Model, Touch, attribute, attribute_all

CONV = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def touch(tid: str, hours_before: float, window_hours: float = 168, campaign: str = "c") -> Touch:
    return Touch(
        touch_id=tid,
        message_id=f"m-{tid}",
        campaign=campaign,
        occurred_at=CONV - timedelta(hours=hours_before),
        window=timedelta(hours=window_hours),
    )


def weights(model: Model, touches: list[Touch], **kw) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    return {c.touch.touch_id: c.weight for c in attribute(model, touches, CONV, **kw)}


JOURNEY = [touch("B", 24), touch("A", 72), touch("C", 1)]  # given out of order on purpose


def test_last_and_first_click() -> None:
    assert weights(Model.LAST_CLICK, JOURNEY) == {"C": 1}
    assert weights(Model.FIRST_CLICK, JOURNEY) == {"A": 1}


def test_linear_thirds_sum_exactly_to_one() -> None:
    w = weights(Model.LINEAR, JOURNEY)
    third = Decimal("0.33333333333333333333")
    assert w == {"A": third, "B": third, "C": third + Decimal("1e-20")}  # residual to the latest
    assert sum(w.values()) == 1


def test_position_based() -> None:
    assert weights(Model.POSITION_BASED, JOURNEY) == {
        "A": Decimal("0.4"),
        "B": Decimal("0.2"),
        "C": Decimal("0.4"),
    }
    four = [touch("a", 90), touch("b", 50), touch("c", 20), touch("d", 2)]
    assert weights(Model.POSITION_BASED, four) == {
        "a": Decimal("0.4"),
        "b": Decimal("0.1"),
        "c": Decimal("0.1"),
        "d": Decimal("0.4"),
    }
    assert weights(Model.POSITION_BASED, four[:2]) == {"a": Decimal("0.5"), "b": Decimal("0.5")}


def test_time_decay_against_floats() -> None:
    raw = {"A": 2 ** (-72 / 168), "B": 2 ** (-24 / 168), "C": 2 ** (-1 / 168)}
    total = sum(raw.values())
    w = weights(Model.TIME_DECAY, JOURNEY)
    for tid, value in raw.items():
        assert math.isclose(float(w[tid]), value / total, rel_tol=1e-12)
    assert sum(w.values()) == 1
    # a shorter half-life favours the recent touch more
    short = weights(Model.TIME_DECAY, JOURNEY, half_life_hours=Decimal(24))
    assert short["C"] > w["C"] and math.isclose(
        float(short["A"]), 2 ** (-3) / (2 ** (-3) + 2 ** (-1) + 2 ** (-1 / 24)), rel_tol=1e-12
    )


def test_single_touch_gets_everything_in_every_model() -> None:
    for model, credits in attribute_all([touch("only", 5)], CONV).items():
        assert [(c.touch.touch_id, c.weight) for c in credits] == [("only", 1)], model


def test_ties_in_time_break_by_touch_id() -> None:
    tied = [touch("b", 10), touch("a", 10)]
    assert weights(Model.LAST_CLICK, tied) == {"b": 1}
    assert weights(Model.FIRST_CLICK, tied) == {"a": 1}
    assert weights(Model.LAST_CLICK, list(reversed(tied))) == {"b": 1}


def test_touches_outside_the_window_get_nothing() -> None:
    journey = [
        touch("too-old", 169),  # default 7-day window
        touch("edge", 168),  # exactly 7 days: inside
        touch("after", -1),  # after the conversion
        touch("flash-late", 25, window_hours=24, campaign="flash"),  # 24 h flash-sale window
        touch("flash-ok", 23, window_hours=24, campaign="flash"),
    ]
    assert weights(Model.LINEAR, journey) == {
        "edge": Decimal("0.5"),
        "flash-ok": Decimal("0.5"),
    }
    assert attribute(Model.LAST_CLICK, [touch("x", 500)], CONV) == []


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=4), st.integers(min_value=-10, max_value=200)),
        min_size=1,
        max_size=12,
        unique_by=lambda x: x[0],
    ),
    st.sampled_from(list(Model)),
)
def test_credits_sum_to_one_or_nothing(raw: list[tuple[str, int]], model: Model) -> None:
    touches = [touch(tid, hours) for tid, hours in raw]
    credits = attribute(model, touches, CONV)
    in_window = [t for t in touches if 0 <= (CONV - t.occurred_at).total_seconds() <= 168 * 3600]
    if in_window:
        assert sum(c.weight for c in credits) == 1
        assert all(c.weight > 0 for c in credits)
    else:
        assert credits == []
