"""Send-time recommendations from slot moments: intervals by hand (statistics), the best slot
and those the data cannot tell from it, and "not enough data" where that is the truth."""

from __future__ import annotations

import math
from statistics import NormalDist, mean, stdev

import pytest

from sinks.send_times import SendTimeSettings, recommend_rows

Z95 = NormalDist().inv_cdf(0.975)


def row(hour: int, weekday: int, values: list[float], segment: str = "vip") -> dict:
    return {
        "segment": segment,
        "local_hour": hour,
        "local_weekday": weekday,
        "sent": len(values),
        "earning": sum(1 for v in values if v > 0),
        "revenue": sum(values),
        "revenue_squares": sum(v * v for v in values),
    }


def by_hand(values: list[float]) -> tuple[float, float, float]:
    half = Z95 * stdev(values) / math.sqrt(len(values))
    return mean(values), mean(values) - half, mean(values) + half


EVENING = [40.0] * 30 + [0.0] * 170  # 6.00 per message
NOON = [30.0] * 20 + [0.0] * 180  # 3.00
MORNING = [10.0] * 12 + [0.0] * 188  # 0.60
NIGHT = [90.0] * 3 + [0.0] * 197  # few earners: not enough data


def test_each_slot_has_its_hand_computed_interval_and_the_best_comes_first() -> None:
    rows = [row(19, 5, EVENING), row(12, 5, NOON), row(8, 2, MORNING), row(2, 2, NIGHT)]
    (vip,) = recommend_rows(rows, SendTimeSettings())
    hours = {s.value: s for s in vip.hours}
    for hour, values in ((19, EVENING), (12, NOON), (8, MORNING)):
        m, low, high = by_hand(values)
        assert hours[hour].enough
        assert (hours[hour].revenue_per_message, hours[hour].low, hours[hour].high) == (
            pytest.approx(m, rel=1e-12),
            pytest.approx(low, rel=1e-9),
            pytest.approx(high, rel=1e-9),
        )
    assert not hours[2].enough  # 3 earning messages: under the 10 an interval needs
    best = vip.best_hours
    assert best is not None and best[0].value == 19
    # noon's interval reaches evening's lower bound or not, exactly as the hand figures say
    tied = by_hand(NOON)[2] >= by_hand(EVENING)[1]
    assert [s.value for s in best[1:]] == ([12] if tied else [])
    # weekdays: Friday (evening + noon) against Tuesday (morning + night)
    days = {s.value: s for s in vip.weekdays}
    assert days[5].revenue_per_message == pytest.approx(mean(EVENING + NOON))
    assert vip.best_weekdays is not None and vip.best_weekdays[0].value == 5


def test_a_segment_with_one_judged_slot_gets_no_recommendation() -> None:
    rows = [row(19, 5, EVENING, "new"), row(2, 5, NIGHT, "new")]
    (new,) = recommend_rows(rows, SendTimeSettings())
    assert new.best_hours is None  # one slot judged: nothing to compare it with
    assert new.best_weekdays is None  # one weekday


def test_segments_are_judged_apart() -> None:
    rows = [row(19, 5, EVENING, "a"), row(12, 5, NOON, "a"), row(12, 6, EVENING, "b")]
    found = {s.segment: s for s in recommend_rows(rows, SendTimeSettings())}
    assert sorted(found) == ["a", "b"]
    assert [s.value for s in found["b"].hours] == [12]
    assert found["b"].hours[0].revenue_per_message == pytest.approx(6.0)
