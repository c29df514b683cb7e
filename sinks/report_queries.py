"""SQL behind the reports. The funnel summary reads the hourly aggregate (FINAL: its rows are
upserts); the attributed report reads the metric views, so its figures are the views' own."""

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
    toString(sumMap(cost)[{currency:String}]) AS cost,
    sum(after_window_conversions) AS after_window_conversions,
    toString(sumMap(after_window_revenue)[{currency:String}]) AS after_window_revenue
FROM funnel_hourly FINAL
WHERE account = {account:String}
GROUP BY campaign, variant
ORDER BY campaign, variant
"""

# Additive counts only: they roll up from the views' finer dimensions by summing.
VARIANT_FUNNEL = """
SELECT campaign, variant, sum(sent) AS sent, sum(delivered) AS delivered,
    sum(unique_human_clicks) AS unique_clicks, sum(conversions) AS conversions,
    sum(after_window_conversions) AS after_window_conversions
FROM campaign_metrics
WHERE account = {account:String}
GROUP BY campaign, variant
ORDER BY campaign, variant
"""

VARIANT_MONEY = """
SELECT campaign, variant, toString(sum(attributed_revenue)) AS revenue,
    toString(sum(attributed_conversions)) AS attributed_conversions, toString(sum(cost)) AS cost
FROM attributed_revenue
WHERE account = {account:String} AND model = {model:String} AND currency = {currency:String}
GROUP BY campaign, variant
"""

CAMPAIGN_WINDOWS = """
SELECT campaign, arraySort(groupUniqArray(attribution_window_hours)) AS windows
FROM funnel_rows FINAL
WHERE account = {account:String} AND has_send
GROUP BY campaign
"""
