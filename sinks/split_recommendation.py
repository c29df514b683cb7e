"""The next traffic split of a campaign from its live figures: each variant's messages sent,
attributed conversions and attributed revenue (net of refunds) under one model and currency,
read from the attributed_revenue view, into the Thompson split (creative_split.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sinks.creative_split import SplitSettings, VariantFigures, split
from sinks.query_client import QueryClient

# aliases no column of the view has (ClickHouse resolves aliases query-wide)
VARIANT_FIGURES = """
SELECT variant, sum(sent) AS n_sent, sum(attributed_conversions) AS n_conversions,
    sum(attributed_revenue) AS n_revenue
FROM attributed_revenue
WHERE account = {a:String} AND campaign = {c:String} AND model = {m:String}
    AND currency = {cur:String}
GROUP BY variant
ORDER BY variant
"""


@dataclass(frozen=True)
class Recommendation:
    account: str
    campaign: str
    model: str
    currency: str
    split: dict[str, float]
    variants: dict[str, VariantFigures]
    settings: SplitSettings

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "campaign": self.campaign,
            "model": self.model,
            "currency": self.currency,
            "split": self.split,
            "variants": {
                v: {"messages": f.messages, "conversions": f.conversions, "revenue": str(f.revenue)}
                for v, f in self.variants.items()
            },
            "settings": asdict(self.settings),
        }


def recommend(
    client: QueryClient,
    account: str,
    campaign: str,
    model: str = "last_click",
    currency: str = "USD",
    settings: SplitSettings = SplitSettings(),
) -> Recommendation:
    """The split for `campaign`'s next sends; no variants (nothing sent yet): an empty split."""
    rows = client.rows(VARIANT_FIGURES, {"a": account, "c": campaign, "m": model, "cur": currency})
    figures = {
        r["variant"]: VariantFigures(
            int(r["n_sent"]), round(Decimal(str(r["n_conversions"]))), Decimal(str(r["n_revenue"]))
        )
        for r in rows
    }
    return Recommendation(
        account, campaign, model, currency, split(figures, settings), figures, settings
    )
