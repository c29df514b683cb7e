"""The revenue-aware traffic split (sinks/creative_split.py) in a simulation with known
true variant rates: over several seeds, the split converges to the variant that earns most per
message (not the one that converts most, nor the one with the largest orders), and the sends
it allocates earn more than a fixed even split would have; the floor and the minimum sample
hold."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from sinks.creative_split import SplitSettings, VariantFigures, split

# variant -> (conversion rate, mean order value): revenue per message 0.90, 1.20, 1.00; a
# converts most, c has the largest orders, b earns most
TRUE = {"a": (0.03, 30.0), "b": (0.025, 48.0), "c": (0.01, 100.0)}
RPM = {v: p * value for v, (p, value) in TRUE.items()}
SETTINGS = SplitSettings(floor=0.05, min_messages=500, draws=1000)


def simulate(seed: int, rounds: int = 40, batch: int = 1000) -> tuple[dict[str, float], float]:
    """(the last split, expected revenue of the messages the splits allocated)."""
    rng = random.Random(seed)
    sent = dict.fromkeys(TRUE, 0)
    conversions = dict.fromkeys(TRUE, 0)
    revenue = dict.fromkeys(TRUE, 0.0)
    expected = 0.0
    shares: dict[str, float] = {}
    for r in range(rounds):
        figures = {v: VariantFigures(sent[v], conversions[v], revenue[v]) for v in TRUE}
        shares = split(figures, SETTINGS, seed=seed * 1000 + r)
        for v, share in shares.items():
            n = round(batch * share)
            p, value = TRUE[v]
            converted = sum(rng.random() < p for _ in range(n))
            sent[v] += n
            conversions[v] += converted
            revenue[v] += sum(rng.gammavariate(2.0, value / 2.0) for _ in range(converted))
            expected += n * RPM[v]
    return shares, expected


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_split_converges_to_the_best_earner_and_beats_an_even_split(seed: int) -> None:
    shares, expected = simulate(seed)
    best = max(RPM, key=RPM.__getitem__)
    assert best == "b"
    assert max(shares, key=shares.__getitem__) == best
    assert shares[best] >= 0.6, shares
    even = 40 * 1000 * sum(RPM.values()) / len(RPM)
    assert expected > even * 1.05, (expected, even)  # the best alone: 1.16 times even


def test_even_until_every_variant_has_the_minimum_sample() -> None:
    figures = {
        "a": VariantFigures(499, 0, Decimal(0)),
        "b": VariantFigures(5000, 300, Decimal(12000)),
    }
    assert split(figures, SETTINGS) == {"a": 0.5, "b": 0.5}


def test_a_clear_loser_keeps_the_floor_and_shares_sum_to_one() -> None:
    figures = {
        "a": VariantFigures(20_000, 40, Decimal(1600)),  # 0.08 per message
        "b": VariantFigures(20_000, 600, Decimal(24000)),  # 1.20 per message
    }
    shares = split(figures, SETTINGS)
    assert shares["a"] == pytest.approx(0.05)
    assert shares["b"] == pytest.approx(0.95)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_floor_too_high_for_the_variants_is_refused() -> None:
    figures = {v: VariantFigures(1000, 10, Decimal(400)) for v in "abc"}
    with pytest.raises(ValueError, match="floor"):
        split(figures, SplitSettings(floor=0.4))
