"""The terminal report, in attributed money: per campaign and variant, sent, delivered, unique
human clicks, CTR, conversions (window-bound; those after the window beside them), attributed
revenue under a named model, cost, RPM, RPC, CPA and ROAS. Its figures are the metric views'
(campaign_metrics, attributed_revenue), summed from their finer dimensions, so the report and a
BI tool on the views agree to the cent.

`campaign_summary` is the other reading: the funnel per variant from the hourly aggregate
(revenue through each message's own clicks), which the demo checks against the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from schemas import metric_formulas as mf
from schemas.attribution_credit import AttributionModel
from sinks.query_client import QueryClient
from sinks.report_queries import (
    CAMPAIGN_VARIANT_SUMMARY,
    CAMPAIGN_WINDOWS,
    VARIANT_FUNNEL,
    VARIANT_MONEY,
)

DEFAULT_MODEL = AttributionModel.LAST_CLICK  # DOMAIN.md: the headline model
CENT = Decimal("0.01")


@dataclass(frozen=True)
class VariantSummary:
    """The funnel per variant, from the hourly aggregate."""

    campaign: str
    variant: str
    sent: int
    delivered: int
    unique_clicks: int
    clicks: int
    converting: int
    conversions: int
    revenue: Decimal
    cost: Decimal
    after_window_conversions: int
    after_window_revenue: Decimal

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> VariantSummary:
        return cls(
            campaign=row["campaign"],
            variant=row["variant"],
            sent=int(row["sent"]),
            delivered=int(row["delivered"]),
            unique_clicks=int(row["unique_clicks"]),
            clicks=int(row["clicks"]),
            converting=int(row["converting"]),
            conversions=int(row["conversions"]),
            revenue=Decimal(row["revenue"]),
            cost=Decimal(row["cost"]),
            after_window_conversions=int(row["after_window_conversions"]),
            after_window_revenue=Decimal(row["after_window_revenue"]),
        )


def campaign_summary(
    client: QueryClient, account: str, currency: str = "USD"
) -> list[VariantSummary]:
    rows = client.rows(CAMPAIGN_VARIANT_SUMMARY, {"account": account, "currency": currency})
    return [VariantSummary.from_row(r) for r in rows]


@dataclass(frozen=True)
class AttributedVariant:
    """One line of the report. `revenue` is attributed under the report's model; `windows`
    are the attribution windows (hours) the campaign's sends carried."""

    campaign: str
    variant: str
    windows: tuple[int, ...]
    sent: int
    delivered: int
    unique_clicks: int
    conversions: int
    after_window_conversions: int
    revenue: Decimal
    cost: Decimal

    @property
    def ctr(self) -> mf.Rate:
        return mf.click_through_rate(self.unique_clicks, self.delivered)

    @property
    def rpm(self) -> mf.Rate:
        return mf.revenue_per_message(self.revenue, self.sent)

    @property
    def rpc(self) -> mf.Rate:
        return mf.revenue_per_click(self.revenue, self.unique_clicks)

    @property
    def cpa(self) -> mf.Rate:
        return mf.cost_per_acquisition(self.cost, self.conversions)

    @property
    def roas(self) -> mf.Rate:
        return mf.return_on_ad_spend(self.revenue, self.cost)


def attributed_summary(
    client: QueryClient,
    account: str,
    model: str = DEFAULT_MODEL,
    currency: str = "USD",
) -> list[AttributedVariant]:
    model = AttributionModel(model).value  # a clear error for a model that does not exist
    p = {"account": account, "model": model, "currency": currency}
    money = {(r["campaign"], r["variant"]): r for r in client.rows(VARIANT_MONEY, p)}
    windows = {r["campaign"]: tuple(r["windows"]) for r in client.rows(CAMPAIGN_WINDOWS, p)}
    out = []
    for r in client.rows(VARIANT_FUNNEL, p):
        m = money.get((r["campaign"], r["variant"]), {})
        out.append(
            AttributedVariant(
                campaign=r["campaign"],
                variant=r["variant"],
                windows=windows.get(r["campaign"], ()),
                sent=int(r["sent"]),
                delivered=int(r["delivered"]),
                unique_clicks=int(r["unique_clicks"]),
                conversions=int(r["conversions"]),
                after_window_conversions=int(r["after_window_conversions"]),
                # no row: nothing of this currency was spent or earned there
                revenue=Decimal(m.get("revenue", 0)),
                cost=Decimal(m.get("cost", 0)),
            )
        )
    return out


def money(value: Decimal, currency: str) -> str:
    return f"{currency} {value.quantize(CENT):,}"


def ratio(rate: mf.Rate, currency: str = "", places: int = 2) -> str:
    value = rate.value
    if value is None:
        return "n/a"
    return f"{currency} {value.quantize(Decimal(1).scaleb(-places)):,}".strip()


def window_label(windows: tuple[int, ...]) -> str:
    return ", ".join(f"{h // 24} d" if h % 24 == 0 and h >= 48 else f"{h} h" for h in windows)


def title(account: str, model: str, currency: str) -> str:
    return (
        f"smsfunnel report - account {account}: revenue attributed by {model} within each "
        f"campaign's attribution window, net of refunds and corrections, in {currency}; "
        "conversions through each message's own clicks inside that window (after it: apart)"
    )


def render(
    summaries: list[AttributedVariant],
    account: str,
    model: str = DEFAULT_MODEL,
    currency: str = "USD",
) -> Table:
    table = Table(title=title(account, model, currency))
    columns = (
        "campaign (window)",
        "variant",
        "sent",
        "delivered",
        "unique clicks",
        "CTR",
        "conversions (+after window)",
        f"revenue ({model})",
        "cost",
        "RPM",
        "RPC",
        "CPA",
        "ROAS",
    )
    for column in columns:
        if column in columns[:2]:  # names fold onto more lines rather than lose their end
            table.add_column(column, justify="left", overflow="fold")
        else:
            table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            f"{s.campaign} ({window_label(s.windows)})",
            s.variant,
            f"{s.sent:,}",
            f"{s.delivered:,}",
            f"{s.unique_clicks:,}",
            s.ctr.percent(),
            f"{s.conversions:,} (+{s.after_window_conversions:,})",
            money(s.revenue, currency),
            money(s.cost, currency),
            ratio(s.rpm, currency, 4),  # a message earns fractions of a cent
            ratio(s.rpc, currency, 4),
            ratio(s.cpa, currency),
            ratio(s.roas),
        )
    return table


def print_report(
    client: QueryClient,
    account: str,
    console: Console | None = None,
    model: str = DEFAULT_MODEL,
    currency: str = "USD",
) -> None:
    console = console or Console()
    summaries = attributed_summary(client, account, model, currency)
    if not summaries:
        console.print(f"No funnel rows for account {account!r} yet.")
        return
    console.print(render(summaries, account, model, currency))
