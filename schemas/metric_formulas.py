"""Metric definitions (DOMAIN.md) as pure functions. Every rate keeps its numerator and
denominator so a reader can recompute it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Rate:
    numerator: Decimal | int
    denominator: Decimal | int

    @property
    def value(self) -> Decimal | None:
        if not self.denominator:
            return None
        return Decimal(self.numerator) / Decimal(self.denominator)

    def percent(self, places: int = 2) -> str:
        v = self.value
        return "n/a" if v is None else f"{v * 100:.{places}f}%"


def delivery_rate(delivered: int, sent: int) -> Rate:
    return Rate(delivered, sent)


def click_through_rate(unique_clicks: int, delivered: int) -> Rate:
    """CTR (delivered): unique clicks / delivered (unqualified "CTR" in DOMAIN.md)."""
    return Rate(unique_clicks, delivered)


def conversion_rate(converting: int, delivered: int) -> Rate:
    """Converting recipients / delivered."""
    return Rate(converting, delivered)


def revenue_per_message(revenue: Decimal, sent: int) -> Rate:
    return Rate(revenue, sent)


def revenue_per_click(revenue: Decimal, unique_clicks: int) -> Rate:
    """RPC: attributed revenue / unique human clicks."""
    return Rate(revenue, unique_clicks)


def cost_per_acquisition(cost: Decimal, conversions: int) -> Rate:
    """CPA: cost / conversions (window-bound, through the messages' own clicks)."""
    return Rate(cost, conversions)


def return_on_ad_spend(revenue: Decimal, cost: Decimal) -> Rate:
    """ROAS: attributed revenue / cost."""
    return Rate(revenue, cost)
