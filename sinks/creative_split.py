"""The traffic split for a campaign's next sends, shifted toward the variants that earn more
per message: Thompson sampling on revenue per message (issue 13, first step; pure, stdlib only).

Why Thompson sampling: it allocates in proportion to the probability that each variant is the
best, so a clear loser stops getting traffic quickly while close variants keep sharing it; it
needs only each variant's messages, conversions and revenue (what the aggregates hold); and it
keeps exploring without a tuning schedule. An epsilon-greedy or UCB policy would need either a
decay to tune or a variance bound that heavy-tailed revenue does not give.

The model of one variant's revenue per message: a message converts with probability p, and a
conversion's value is Gamma-distributed with a known shape (`VALUE_SHAPE`, 2: order values are
right-skewed and rarely near zero) and an unknown rate b. The priors are conjugate: Beta(1, 1)
on p, and on b a Gamma(shape, rate = m) worth one conversion of the prior mean value m. After n
messages with c conversions worth R in all: p ~ Beta(1 + c, 1 + n - c) and b ~ Gamma(shape *
(1 + c), rate m + R), and the mean revenue per message is p * shape / b. Each of `draws` joint
draws names a best variant; the share of draws a variant wins is its Thompson weight.

The split then keeps an exploration floor (every variant gets at least `floor`), and moves off
the even split only once every variant has `min_messages`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

VALUE_SHAPE = 2.0


@dataclass(frozen=True)
class VariantFigures:
    messages: int  # delivered messages
    conversions: int
    revenue: Decimal | float  # attributed, in one currency


@dataclass(frozen=True)
class SplitSettings:
    floor: float = 0.05  # every variant's least share
    min_messages: int = 500  # each variant, before the split moves off even
    draws: int = 4000
    prior_mean_value: float = 50.0  # a conversion's value before any is seen


def revenue_per_message_draw(f: VariantFigures, s: SplitSettings, rng: random.Random) -> float:
    """One draw of the variant's mean revenue per message from its posterior."""
    p = rng.betavariate(1 + f.conversions, 1 + max(f.messages - f.conversions, 0))
    shape = VALUE_SHAPE * (1 + f.conversions)
    rate = s.prior_mean_value + float(f.revenue)
    b = rng.gammavariate(shape, 1 / rate)  # gammavariate takes a scale
    return p * VALUE_SHAPE / b


def split(
    figures: Mapping[str, VariantFigures], s: SplitSettings = SplitSettings(), seed: int = 0
) -> dict[str, float]:
    """Each variant's share of the next sends (the shares sum to 1)."""
    names = sorted(figures)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: 1.0}
    if s.floor * len(names) > 1:
        raise ValueError(f"a floor of {s.floor} leaves nothing to shift among {len(names)}")
    if any(figures[n].messages < s.min_messages for n in names):
        return {n: 1 / len(names) for n in names}
    rng = random.Random(seed)
    wins = dict.fromkeys(names, 0)
    for _ in range(s.draws):
        draws = {n: revenue_per_message_draw(figures[n], s, rng) for n in names}
        wins[max(names, key=draws.__getitem__)] += 1
    free = 1 - s.floor * len(names)
    return {n: s.floor + free * wins[n] / s.draws for n in names}
