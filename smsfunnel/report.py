"""The terminal report: per campaign and variant, the funnel with every rate's fraction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from schemas import metric_formulas as mf
from sinks.query_client import QueryClient
from sinks.report_queries import CAMPAIGN_VARIANT_SUMMARY


@dataclass(frozen=True)
class VariantSummary:
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
        )


def campaign_summary(
    client: QueryClient, account: str, currency: str = "USD"
) -> list[VariantSummary]:
    rows = client.rows(CAMPAIGN_VARIANT_SUMMARY, {"account": account, "currency": currency})
    return [VariantSummary.from_row(r) for r in rows]


def _money(value: Decimal, currency: str) -> str:
    return f"{currency} {value.quantize(Decimal('0.01')):,}"


def render(summaries: list[VariantSummary], account: str, currency: str = "USD") -> Table:
    table = Table(
        title=f"smsfunnel report - account {account} "
        f"(revenue: conversions through each message's own clicks, {currency})"
    )
    for column in (
        "campaign",
        "variant",
        "sent",
        "delivery rate",
        "CTR (delivered)",
        "conversion rate",
        "revenue",
        "revenue / message",
    ):
        table.add_column(column, justify="left" if column in ("campaign", "variant") else "right")
    for s in summaries:
        delivery = mf.delivery_rate(s.delivered, s.sent)
        ctr = mf.click_through_rate(s.unique_clicks, s.delivered)
        cvr = mf.conversion_rate(s.converting, s.delivered)
        rpm = mf.revenue_per_message(s.revenue, s.sent).value or Decimal(0)
        table.add_row(
            s.campaign,
            s.variant,
            f"{s.sent:,}",
            f"{delivery.percent()} ({s.delivered:,}/{s.sent:,})",
            f"{ctr.percent()} ({s.unique_clicks:,}/{s.delivered:,})",
            f"{cvr.percent()} ({s.converting:,}/{s.delivered:,})",
            _money(s.revenue, currency),
            f"{currency} {rpm.quantize(Decimal('0.0001'))}",
        )
    return table


def print_report(client: QueryClient, account: str, console: Console | None = None) -> None:
    console = console or Console()
    summaries = campaign_summary(client, account)
    if not summaries:
        console.print(f"No funnel rows for account {account!r} yet.")
        return
    console.print(render(summaries, account))
