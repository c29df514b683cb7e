"""Send-time recommendations (issue 13): per audience segment, the recipient-local hours and the
weekdays whose sends earned the most per message, each with an interval, read from the
send_time_revenue view's moments (messages, revenue, sum of squares).

Hours and weekdays are judged apart (an hour over every weekday, a weekday over every hour):
168 hour-and-weekday cells split the data too thin for any campaign but the largest. Each
slot's interval is the normal approximation of a mean, mean +- z s / sqrt(n); it is honest only
with enough non-zero values, so a slot with fewer than `min_messages` messages or
`min_earning` earning ones is "not enough data", and a segment with fewer than two judged
slots gets no recommendation. The recommendation is the best slot and every slot whose interval
reaches the best one's lower bound: the data cannot tell those apart from the best.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from sinks.query_client import QueryClient

WEEKDAYS = ("", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class SendTimeSettings:
    level: float = 0.95
    min_messages: int = 100
    min_earning: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError("the interval level must lie strictly between 0 and 1")


@dataclass(frozen=True)
class Slot:
    value: int  # hour 0-23, or weekday 1 (Monday) - 7
    sent: int
    earning: int
    revenue_per_message: float | None
    low: float | None
    high: float | None
    enough: bool


@dataclass
class Moments:
    sent: int = 0
    earning: int = 0
    revenue: float = 0.0
    squares: float = 0.0

    def add(self, sent: int, earning: int, revenue: float, squares: float) -> None:
        self.sent += sent
        self.earning += earning
        self.revenue += revenue
        self.squares += squares


def interval(m: Moments, level: float) -> tuple[float | None, float | None, float | None]:
    """Mean revenue per message and its normal-approximation interval."""
    if m.sent == 0:
        return None, None, None
    mean = m.revenue / m.sent
    if m.sent < 2:
        return mean, None, None
    variance = max((m.squares - m.revenue**2 / m.sent) / (m.sent - 1), 0.0)
    half = NormalDist().inv_cdf(0.5 + level / 2) * math.sqrt(variance / m.sent)
    return mean, mean - half, mean + half


def slots(by_value: dict[int, Moments], s: SendTimeSettings) -> list[Slot]:
    out = []
    for value in sorted(by_value):
        m = by_value[value]
        rpm, low, high = interval(m, s.level)
        enough = m.sent >= s.min_messages and m.earning >= s.min_earning and low is not None
        out.append(Slot(value, m.sent, m.earning, rpm, low, high, enough))
    return out


def best(found: list[Slot]) -> list[Slot] | None:
    """The best judged slot first, then those the data cannot tell from it; None: not enough
    data (under two judged slots)."""
    judged = sorted(
        (x for x in found if x.enough), key=lambda x: (-(x.revenue_per_message or 0), x.value)
    )
    if len(judged) < 2:
        return None
    top = judged[0]
    assert top.low is not None
    return [top] + [x for x in judged[1:] if x.high is not None and x.high >= top.low]


@dataclass
class SegmentTimes:
    segment: str
    hours: list[Slot] = field(default_factory=list)
    weekdays: list[Slot] = field(default_factory=list)

    @property
    def best_hours(self) -> list[Slot] | None:
        return best(self.hours)

    @property
    def best_weekdays(self) -> list[Slot] | None:
        return best(self.weekdays)


def recommend_rows(rows: list[dict[str, Any]], s: SendTimeSettings) -> list[SegmentTimes]:
    """From send_time_revenue rows (segment, local_weekday, local_hour, sent, earning, revenue,
    revenue_squares): each segment's slots."""
    hours: dict[str, dict[int, Moments]] = defaultdict(lambda: defaultdict(Moments))
    weekdays: dict[str, dict[int, Moments]] = defaultdict(lambda: defaultdict(Moments))
    for r in rows:
        figures = (
            int(r["sent"]),
            int(r["earning"]),
            float(r["revenue"]),
            float(r["revenue_squares"]),
        )
        hours[r["segment"]][int(r["local_hour"])].add(*figures)
        weekdays[r["segment"]][int(r["local_weekday"])].add(*figures)
    return [
        SegmentTimes(segment, slots(hours[segment], s), slots(weekdays[segment], s))
        for segment in sorted(hours)
    ]


SLOTS = """
SELECT segment, local_weekday, local_hour, sent, earning, revenue, revenue_squares
FROM send_time_revenue
WHERE account = {a:String} AND model = {m:String} AND currency = {cur:String}
    AND ({c:String} = '' OR campaign = {c:String})
"""


def recommend(
    client: QueryClient,
    account: str,
    campaign: str = "",
    model: str = "last_click",
    currency: str = "USD",
    settings: SendTimeSettings = SendTimeSettings(),
) -> list[SegmentTimes]:
    """Each segment's send times in `account` (one campaign, or all when `campaign` is empty)."""
    rows = client.rows(SLOTS, {"a": account, "c": campaign, "m": model, "cur": currency})
    return recommend_rows(rows, settings)


def label(kind: str, value: int) -> str:
    return f"{value:02d}:00" if kind == "hour" else WEEKDAYS[value]
