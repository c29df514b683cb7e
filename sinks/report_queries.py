"""SQL behind the terminal report (reads the hourly aggregates, FINAL: they are upserts)."""

from __future__ import annotations

CAMPAIGN_VARIANT_SUMMARY = """
SELECT
    campaign,
    variant,
    sum(sent) AS sent,
    sum(delivered) AS delivered,
    sum(clicked_messages) AS unique_clicks,
    sum(clicks) AS clicks,
    sum(converting_messages) AS converting,
    sum(conversions) AS conversions,
    toString(sumMap(revenue)[{currency:String}]) AS revenue,
    toString(sumMap(cost)[{currency:String}]) AS cost
FROM funnel_hourly FINAL
WHERE account = {account:String}
GROUP BY campaign, variant
ORDER BY campaign, variant
"""
