"""Variant verdicts on revenue (issue 13): each variant of a campaign against the rest of it, on
attributed revenue per message and on conversion rate, under one attribution model and currency.

The test statistics come from the variant_revenue_tests view (one spelling of each formula, in
SQL, where a BI tool reads them too); this module decides, and sizes what is still undecided.

Why these tests. Revenue per message is zero for most messages and heavy-tailed for the rest
(a few large orders). The question is which variant earns more on average, so the test is on
the mean: Welch's z (the difference of means over its unequal-variance standard error, normal
approximation). A rank test (Mann-Whitney) would answer a different question (which variant
tends to have larger values) and could name a variant with many small orders the winner while
it earns less. The normal approximation of a mean of heavy-tailed values needs enough non-zero
values, so revenue decides nothing until each side has `min_successes` earning messages; the
observed variance already widens the interval for a few large orders. Conversion rate is a
proportion of delivered messages: the pooled two-proportion z, with the same minimum.

Several variants are each tested against the rest of their campaign, so the family-wise error
is held with Bonferroni: alpha / k for k variants (with two, both tests are the same test, so
alpha). The sample still needed for an undecided test is the per-side size at which a relative
difference of `mde` from the rest's figure would be found with `power`, at that alpha.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Any

from sinks.query_client import QueryClient


class Call(StrEnum):
    WINNER = "winner"
    LOSER = "loser"
    UNDECIDED = "undecided"


@dataclass(frozen=True)
class VerdictSettings:
    alpha: float = 0.05  # family-wise, two-sided
    power: float = 0.8
    mde: float = 0.10  # minimum detectable effect, relative to the rest's figure
    min_successes: int = 30  # earning (or converted) messages on each side before a call

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or not 0 < self.power < 1:
            raise ValueError("alpha and power must lie strictly between 0 and 1")
        if self.mde <= 0:
            raise ValueError("the minimum detectable effect must be above 0")
        if self.min_successes < 1:
            raise ValueError("min_successes must be at least 1")


def family_alpha(variants: int, alpha: float) -> float:
    """Bonferroni over the campaign's variant-against-rest tests; with two variants there is
    one test (each is the other's mirror)."""
    return alpha / (1 if variants <= 2 else variants)


def _z_sum(alpha: float, power: float) -> float:
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)


def mean_sample_size(
    stddev: float, rest_stddev: float, delta: float, alpha: float, power: float
) -> int | None:
    """Messages per side for a two-sided z-test of two means to find a difference of `delta`:
    (z_{1-alpha/2} + z_power)^2 (s1^2 + s2^2) / delta^2. None when there is nothing to size
    (no difference to find, or no spread seen)."""
    if delta <= 0 or stddev**2 + rest_stddev**2 == 0:
        return None
    return math.ceil(_z_sum(alpha, power) ** 2 * (stddev**2 + rest_stddev**2) / delta**2)


def proportion_sample_size(rest_rate: float, mde: float, alpha: float, power: float) -> int | None:
    """Delivered messages per side to find rest_rate x (1 + mde) against rest_rate:
    (z_{1-alpha/2} + z_power)^2 (p1 q1 + p2 q2) / (p2 - p1)^2."""
    p1, p2 = rest_rate, rest_rate * (1 + mde)
    if p1 <= 0 or p2 >= 1:
        return None
    variance = p1 * (1 - p1) + p2 * (1 - p2)
    return math.ceil(_z_sum(alpha, power) ** 2 * variance / (p2 - p1) ** 2)


def call(z: float | None, p: float | None, alpha: float, enough: bool) -> Call:
    if not enough or z is None or p is None or p >= alpha:
        return Call.UNDECIDED
    return Call.WINNER if z > 0 else Call.LOSER


@dataclass(frozen=True)
class Verdict:
    campaign: str
    variant: str
    model: str
    currency: str
    variants: int
    alpha: float  # the family-wise alpha over this campaign's tests
    sent: int
    earning: int
    revenue_per_message: float | None
    rest_revenue_per_message: float | None
    rpm_z: float | None
    rpm_p_value: float | None
    revenue_call: Call
    delivered: int
    converted: int
    conversion_rate: float | None
    rest_conversion_rate: float | None
    conversion_p_value: float | None
    conversion_call: Call
    # undecided on revenue: messages per side for the mde, and how many more are still to send
    messages_needed: int | None
    more_messages: int | None
    reason: str

    def to_json_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Call) else v) for k, v in asdict(self).items()}


def _reason(row: dict[str, Any], s: VerdictSettings, revenue_call: Call, alpha: float) -> str:
    if revenue_call is not Call.UNDECIDED:
        return f"revenue per message differs from the rest's at p = {row['rpm_p_value']:.2g}"
    if int(row["variants"]) < 2:
        return "the only variant of its campaign: nothing to compare with"
    short = min(int(row["earning"]), int(row["rest_earning"]))
    if short < s.min_successes:
        return f"{short} earning messages on one side; a call needs {s.min_successes} on each"
    p = row["rpm_p_value"]
    if p is None:
        return "no spread in revenue on either side"
    return f"p = {p:.2g}, not below {alpha:.3g}"


def decide(row: dict[str, Any], s: VerdictSettings = VerdictSettings()) -> Verdict:
    """The verdict for one row of variant_revenue_tests."""
    k = int(row["variants"])
    alpha = family_alpha(k, s.alpha)
    revenue_enough = k >= 2 and min(int(row["earning"]), int(row["rest_earning"])) >= (
        s.min_successes
    )
    conversion_enough = k >= 2 and min(int(row["converted"]), int(row["rest_converted"])) >= (
        s.min_successes
    )
    revenue_call = call(row["rpm_z"], row["rpm_p_value"], alpha, revenue_enough)
    conversion_call = call(row["conversion_z"], row["conversion_p_value"], alpha, conversion_enough)
    needed = more = None
    rest_rpm = row["rest_revenue_per_message"]
    if revenue_call is Call.UNDECIDED and k >= 2 and rest_rpm is not None:
        needed = mean_sample_size(
            row["revenue_stddev"] or 0.0,
            row["rest_revenue_stddev"] or 0.0,
            s.mde * rest_rpm,
            alpha,
            s.power,
        )
        if needed is not None:
            more = max(0, needed - int(row["sent"])) + max(0, needed - int(row["rest_sent"]))
    return Verdict(
        campaign=row["campaign"],
        variant=row["variant"],
        model=row["model"],
        currency=row["currency"],
        variants=k,
        alpha=alpha,
        sent=int(row["sent"]),
        earning=int(row["earning"]),
        revenue_per_message=row["revenue_per_message"],
        rest_revenue_per_message=rest_rpm,
        rpm_z=row["rpm_z"],
        rpm_p_value=row["rpm_p_value"],
        revenue_call=revenue_call,
        delivered=int(row["delivered"]),
        converted=int(row["converted"]),
        conversion_rate=row["conversion_rate"],
        rest_conversion_rate=row["rest_conversion_rate"],
        conversion_p_value=row["conversion_p_value"],
        conversion_call=conversion_call,
        messages_needed=needed,
        more_messages=more,
        reason=_reason(row, s, revenue_call, alpha),
    )


TESTS = """
SELECT campaign, variant, model, currency, variants, sent, earning, rest_sent, rest_earning,
    revenue_per_message, rest_revenue_per_message, revenue_stddev, rest_revenue_stddev,
    rpm_z, rpm_p_value, delivered, converted, rest_converted, conversion_rate,
    rest_conversion_rate, conversion_z, conversion_p_value
FROM variant_revenue_tests
WHERE account = {a:String} AND model = {m:String} AND currency = {cur:String}
    AND ({c:String} = '' OR campaign = {c:String})
ORDER BY campaign, variant
"""


def verdicts(
    client: QueryClient,
    account: str,
    campaign: str = "",
    model: str = "last_click",
    currency: str = "USD",
    settings: VerdictSettings = VerdictSettings(),
) -> list[Verdict]:
    """Every variant's verdict in `account` (one campaign, or all when `campaign` is empty)."""
    rows = client.rows(TESTS, {"a": account, "c": campaign, "m": model, "cur": currency})
    return [decide(r, settings) for r in rows]
