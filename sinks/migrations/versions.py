"""ClickHouse schema, as versioned migrations (forwards and backwards).

The same DDL runs on the embedded engine (chdb) and on a single ClickHouse server. Tables are
non-replicated, so insert deduplication needs `non_replicated_deduplication_window` (0 = off by
default); a cluster variant swaps the engines for Replicated* and adds Distributed tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinks import hourly_aggregate as hourly
from sinks.migrations.revenue_moments import SEND_TIME_REVENUE, VARIANT_REVENUE_TESTS
from sinks.migrations.sql_parts import MODELS_ARRAY, NET_CREDIT_LINES, SENT_MESSAGES
from sinks.migrations.sql_parts import z_test as _z_test


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: tuple[str, ...]
    down: tuple[str, ...]


DEDUP = "non_replicated_deduplication_window = 1000"
TS = hourly.TS  # one spelling of the timestamp column type


# Dimensions every metric view is grouped by (DOMAIN.md); a BI tool rolls up by summing the
# numerator and denominator columns and dividing again, never by averaging the rates.
DIMS = "account, campaign, variant, segment, sender, country, carrier"
DIM_COLUMNS = """
    account LowCardinality(String),
    campaign LowCardinality(String),
    variant LowCardinality(String) COMMENT 'creative (utm_content)',
    segment LowCardinality(String) COMMENT 'audience (utm_term)',
    sender LowCardinality(String) COMMENT 'short code, long code or alphanumeric id',
    country LowCardinality(String),
    carrier LowCardinality(String),"""
OPT_OUTS_BY_MESSAGE = (
    "(SELECT account, message_id, sum(opt_outs) AS opt_outs, min(first_response_at) AS replied_at "
    "FROM message_responses FINAL WHERE message_id != '' GROUP BY account, message_id)"
)


def _rate(num: str, den: str) -> str:
    return f"{num} / nullIf({den}, 0)"


def campaign_metrics(after_window: bool) -> str:
    """The campaign_metrics view; `after_window`: with the conversions after their window
    (funnel_rows has them from migration 13, the view from 14)."""
    column = (
        "after_window_conversions UInt64 COMMENT 'conversions through these messages after their "
        "attribution window: in no other figure',"
        if after_window
        else ""
    )
    measure = "sum(m_after_window) AS after_window_conversions," if after_window else ""
    source = ", after_window_conversions AS m_after_window" if after_window else ""
    return f"""
CREATE OR REPLACE VIEW campaign_metrics (
    {DIM_COLUMNS}
    sent UInt64 COMMENT 'messages attempted (send events seen)',
    dropped UInt64 COMMENT 'rejected before the handset network (invalid, compliance)',
    delivered UInt64,
    failed UInt64 COMMENT 'the network tried and could not deliver: undelivered + expired',
    unknown UInt64 COMMENT 'final receipt said unknown',
    pending UInt64 COMMENT 'no final receipt yet',
    clicks UInt64 COMMENT 'every click event, previews and scanners included',
    human_clicks UInt64 COMMENT 'clicks less previews, scanners, HEAD and on-delivery fetches',
    unique_human_clicks UInt64 COMMENT 'messages with at least one human click',
    landings UInt64,
    engagements UInt64,
    conversions UInt64 COMMENT 'conversions through these messages inside their attribution window (one per order id)',
    {column}
    converting_recipients UInt64 COMMENT 'distinct recipients with a conversion',
    opt_outs UInt64 COMMENT 'opt-outs attributed to these messages (last delivered by sender)',
    dropped_rate Nullable(Float64) COMMENT 'dropped / sent',
    delivery_rate Nullable(Float64) COMMENT 'delivered / sent',
    failure_rate Nullable(Float64) COMMENT 'failed / sent (by cause: failure_causes)',
    ctr_sent Nullable(Float64) COMMENT 'unique_human_clicks / sent (TextUs)',
    ctr Nullable(Float64) COMMENT 'unique_human_clicks / delivered: CTR (delivered), Optimove',
    landing_rate Nullable(Float64) COMMENT 'landings / unique_human_clicks',
    engagement_rate Nullable(Float64) COMMENT 'engagements / landings',
    conversion_rate Nullable(Float64) COMMENT 'converting_recipients / delivered (BSG)',
    click_to_conversion_rate Nullable(Float64) COMMENT 'conversions / unique_human_clicks',
    unsubscribe_rate Nullable(Float64) COMMENT 'opt_outs / delivered'
) AS
SELECT
    {DIMS},
    count() AS sent,
    countIf(m_status = 'rejected') AS dropped,
    countIf(m_status = 'delivered') AS delivered,
    countIf(m_status IN ('undelivered', 'expired')) AS failed,
    countIf(m_status = 'unknown') AS unknown,
    countIf(m_status IN ('', 'submitted')) AS pending,
    sum(m_clicks) AS clicks,
    sum(m_human_clicks) AS human_clicks,
    countIf(m_human_clicks > 0) AS unique_human_clicks,
    sum(m_landings) AS landings,
    sum(m_engagements) AS engagements,
    sum(m_conversions) AS conversions,
    {measure}
    uniqExactIf(m_recipient, m_conversions > 0) AS converting_recipients,
    sum(m_opt_outs) AS opt_outs,
    {_rate("dropped", "sent")} AS dropped_rate,
    {_rate("delivered", "sent")} AS delivery_rate,
    {_rate("failed", "sent")} AS failure_rate,
    {_rate("unique_human_clicks", "sent")} AS ctr_sent,
    {_rate("unique_human_clicks", "delivered")} AS ctr,
    {_rate("landings", "unique_human_clicks")} AS landing_rate,
    {_rate("engagements", "landings")} AS engagement_rate,
    {_rate("converting_recipients", "delivered")} AS conversion_rate,
    {_rate("conversions", "unique_human_clicks")} AS click_to_conversion_rate,
    {_rate("opt_outs", "delivered")} AS unsubscribe_rate
FROM (
    -- per-message columns renamed: ClickHouse resolves aliases query-wide, so an aggregate
    -- named like the column it sums would be read inside the next aggregate
    SELECT {DIMS}, delivery_status AS m_status, clicks AS m_clicks,
        human_clicks AS m_human_clicks, landings AS m_landings, engagements AS m_engagements,
        conversions AS m_conversions, recipient_hash AS m_recipient, r.opt_outs AS m_opt_outs
        {source}
    FROM {SENT_MESSAGES} AS f
    LEFT JOIN {OPT_OUTS_BY_MESSAGE} AS r USING (account, message_id)
)
GROUP BY {DIMS}
COMMENT 'Every count metric of DOMAIN.md per campaign dimensions, each rate beside its numerator and denominator. Roll up by summing counts, then dividing.'
"""


CAMPAIGN_METRICS_V3 = campaign_metrics(after_window=False)
CAMPAIGN_METRICS = campaign_metrics(after_window=True)

FAILURE_CAUSES = f"""
CREATE OR REPLACE VIEW failure_causes (
    {DIM_COLUMNS}
    delivery_status LowCardinality(String) COMMENT 'rejected = dropped; undelivered, expired = failed',
    failure_cause LowCardinality(String) COMMENT 'canonical cause (schemas/delivery_status.py)',
    messages UInt64,
    sent UInt64 COMMENT 'all messages of these dimensions',
    rate Nullable(Float64) COMMENT 'messages / sent'
) AS
SELECT {DIMS}, delivery_status, failure_cause, c.messages AS messages, s.sent AS sent,
    {_rate("c.messages", "s.sent")} AS rate
FROM (
    SELECT {DIMS}, delivery_status, failure_cause, count() AS messages FROM {SENT_MESSAGES}
    WHERE delivery_status IN ('rejected', 'undelivered', 'expired')
    GROUP BY {DIMS}, delivery_status, failure_cause
) AS c
INNER JOIN (SELECT {DIMS}, count() AS sent FROM {SENT_MESSAGES} GROUP BY {DIMS}) AS s
USING ({DIMS})
COMMENT 'Dropped and failed messages by canonical cause, with the sent count they divide by.'
"""


GROSS_CREDIT_LINES = """
    SELECT account, model, currency, amount, message_id, weight, false AS adjusting
    FROM attribution_credits FINAL
    ARRAY JOIN message_ids AS message_id, weights AS weight"""


def attributed_revenue(every_group: bool, net: bool = False) -> str:
    """The attributed_revenue view. `every_group` (from migration 14): a row for every model
    and cost currency of every group of sent messages, so a campaign that earned nothing shows
    its cost and a ROAS of 0 instead of no row; before, only groups with a credit had rows.
    `net` (from migration 15): revenue net of refunds, chargebacks and corrections, which are
    credited like the conversion they adjust, and shown apart in attributed_adjustments."""
    if every_group:
        # FULL JOIN USING coalesces the keys; a side without the row reads 0 (no join_use_nulls)
        money = f"""FULL OUTER JOIN (
    SELECT {DIMS}, model, cost_currency AS currency, sum(toDecimal256(cost, 10)) AS cost_total
    FROM {SENT_MESSAGES} ARRAY JOIN {MODELS_ARRAY} AS model
    GROUP BY {DIMS}, model, cost_currency
) AS k USING ({DIMS}, model, currency)
INNER JOIN ({{messages}}) AS m USING ({DIMS})"""
        cost = "k.cost_total AS cost"
    else:
        money = f"""INNER JOIN ({{messages}}) AS m USING ({DIMS})
LEFT JOIN (
    SELECT {DIMS}, cost_currency AS currency, sum(toDecimal256(cost, 10)) AS cost_total
    FROM {SENT_MESSAGES} GROUP BY {DIMS}, cost_currency
) AS k USING ({DIMS}, currency)"""
        cost = "ifNull(k.cost_total, toDecimal256(0, 10)) AS cost"
    messages = (
        f"SELECT {DIMS}, count() AS sent, countIf(human_clicks > 0) AS unique_human_clicks, "
        f"sum(conversions) AS conversions_total FROM {SENT_MESSAGES} GROUP BY {DIMS}"
    )
    money = money.format(messages=messages)
    revenue_comment = (
        "sum of (amount + its adjustments) x credit weight of touches of these messages: net of "
        "refunds, chargebacks and corrections"
        if net
        else "sum of amount x credit weight of touches of these messages"
    )
    adjustments_column = (
        "\n    attributed_adjustments Decimal(76, 30) COMMENT 'the adjustments in "
        "attributed_revenue (refunds and chargebacks negative)',"
        if net
        else ""
    )
    adjustments_select = " attributed_adjustments," if net else ""
    return f"""
CREATE OR REPLACE VIEW attributed_revenue (
    {DIM_COLUMNS}
    model LowCardinality(String) COMMENT 'last_click, first_click, linear, time_decay, position_based',
    currency LowCardinality(String),
    attributed_revenue Decimal(76, 30) COMMENT '{revenue_comment}',{adjustments_column}
    attributed_conversions Decimal(76, 20) COMMENT 'sum of credit weights (fractional conversions)',
    sent UInt64,
    unique_human_clicks UInt64 COMMENT 'messages with at least one human click',
    conversions UInt64 COMMENT 'conversions through these messages inside their window (as campaign_metrics)',
    cost Decimal(76, 10) COMMENT 'cost of these messages in this currency',
    revenue_per_message Nullable(Decimal(76, 30)) COMMENT 'RPM: attributed_revenue / sent',
    revenue_per_click Nullable(Decimal(76, 30)) COMMENT 'RPC: attributed_revenue / unique_human_clicks',
    cost_per_acquisition Nullable(Decimal(76, 10)) COMMENT 'CPA: cost / conversions',
    roas Nullable(Decimal(76, 30)) COMMENT 'attributed_revenue / cost',
    roi Nullable(Decimal(76, 30)) COMMENT '(attributed_revenue - cost) / cost'
) AS
SELECT
    {DIMS}, model, currency, attributed_revenue,{adjustments_select} attributed_conversions,
    m.sent AS sent, m.unique_human_clicks AS unique_human_clicks,
    m.conversions_total AS conversions,
    {cost},
    attributed_revenue / nullIf(sent, 0) AS revenue_per_message,
    attributed_revenue / nullIf(unique_human_clicks, 0) AS revenue_per_click,
    cost / nullIf(conversions, 0) AS cost_per_acquisition,
    attributed_revenue / nullIf(cost, 0) AS roas,
    (attributed_revenue - cost) / nullIf(cost, 0) AS roi
FROM (
    SELECT {DIMS}, model, currency,
        sum(toDecimal256(amount, 10) * toDecimal256(weight, 20)) AS attributed_revenue,
        sumIf(toDecimal256(amount, 10) * toDecimal256(weight, 20), adjusting)
            AS attributed_adjustments,
        sumIf(toDecimal256(weight, 20), NOT adjusting) AS attributed_conversions
    FROM ({NET_CREDIT_LINES if net else GROSS_CREDIT_LINES}
    ) AS c
    INNER JOIN {SENT_MESSAGES} AS f USING (account, message_id)
    GROUP BY {DIMS}, model, currency
) AS a
{money}
COMMENT 'Attributed revenue per model and currency, with RPM, RPC, CPA, ROAS and ROI beside their inputs. Exact decimals; round only for display.'
"""


ATTRIBUTED_REVENUE_V3 = attributed_revenue(every_group=False)
ATTRIBUTED_REVENUE_V14 = attributed_revenue(every_group=True)
ATTRIBUTED_REVENUE = attributed_revenue(every_group=True, net=True)

CONVERSION_ADJUSTMENTS = f"""
CREATE TABLE IF NOT EXISTS conversion_adjustments (
    account LowCardinality(String),
    adjustment_id String COMMENT 'the refund''s or correction''s own id: one row however often sent',
    order_id String COMMENT 'the conversion it adjusts',
    kind LowCardinality(String) COMMENT 'refund, chargeback or correction',
    amount Decimal(38, 10) COMMENT 'signed: refunds and chargebacks are negative',
    currency LowCardinality(String),
    occurred_at {TS},
    source LowCardinality(String),
    received_at {TS}
)
ENGINE = ReplacingMergeTree
ORDER BY (account, adjustment_id)
SETTINGS {DEDUP}
COMMENT 'Signed adjustments of conversions by order id (read with FINAL); revenue views are net of them.'
"""

UNATTRIBUTABLE_ADJUSTMENTS = """
CREATE OR REPLACE VIEW unattributable_adjustments (
    account LowCardinality(String),
    adjustment_id String,
    order_id String,
    kind LowCardinality(String),
    amount Decimal(38, 10),
    currency LowCardinality(String),
    occurred_at DateTime64(6, 'UTC'),
    reason String
) AS
SELECT account, adjustment_id, order_id, kind, amount, currency, occurred_at,
    'no conversion has this order id' AS reason
FROM conversion_adjustments FINAL
WHERE (account, order_id) NOT IN (SELECT account, order_id FROM attribution_credits)
COMMENT 'Adjustments whose order no conversion has (yet): kept, counted in no revenue figure.'
"""

RESPONSE_TIMES = f"""
CREATE OR REPLACE VIEW response_times (
    {DIM_COLUMNS}
    delivered UInt64,
    responded UInt64 COMMENT 'delivered messages whose first human click or reply came after delivery',
    median_seconds Nullable(Float64) COMMENT 'quantileExact(0.5) of first response - delivery',
    p90_seconds Nullable(Float64) COMMENT 'quantileExact(0.9) of first response - delivery'
) AS
SELECT {DIMS}, count() AS delivered, countIf(seconds IS NOT NULL) AS responded,
    -- a quantile over no rows is 0 in ClickHouse; no response is no figure, not zero seconds
    if(responded = 0, NULL,
        quantileExactIf(0.5)(assumeNotNull(seconds), seconds IS NOT NULL)) AS median_seconds,
    if(responded = 0, NULL,
        quantileExactIf(0.9)(assumeNotNull(seconds), seconds IS NOT NULL)) AS p90_seconds
FROM (
    SELECT {DIMS}, multiIf(
            response_at IS NULL OR response_at < delivery_status_at, NULL,
            (toUnixTimestamp64Micro(response_at) - toUnixTimestamp64Micro(delivery_status_at)) / 1e6
        ) AS seconds
    FROM (
        SELECT f.*, if(r.replied_at IS NULL OR (f.first_human_click_at IS NOT NULL
                AND f.first_human_click_at <= r.replied_at), f.first_human_click_at, r.replied_at)
            AS response_at
        FROM {SENT_MESSAGES} AS f
        LEFT JOIN {OPT_OUTS_BY_MESSAGE} AS r USING (account, message_id)
        SETTINGS join_use_nulls = 1
    )
    WHERE delivery_status = 'delivered'
)
GROUP BY {DIMS}
COMMENT 'Response time of delivered messages: first human click or reply minus delivery, exact median and p90.'
"""

# ---- analyses (migration 4) -------------------------------------------------------------------

CAMPAIGN_DIMS = "account, campaign, variant"


VARIANT_COMPARISON = f"""
CREATE OR REPLACE VIEW variant_comparison (
    account LowCardinality(String),
    campaign LowCardinality(String),
    variant LowCardinality(String),
    delivered UInt64,
    clicked UInt64 COMMENT 'delivered messages with a human click',
    converted UInt64 COMMENT 'delivered messages with a conversion',
    ctr Nullable(Float64) COMMENT 'clicked / delivered',
    conversion_rate Nullable(Float64) COMMENT 'converted / delivered',
    rest_delivered UInt64 COMMENT 'the other variants of the campaign, pooled',
    rest_clicked UInt64,
    rest_converted UInt64,
    rest_ctr Nullable(Float64),
    rest_conversion_rate Nullable(Float64),
    ctr_z Nullable(Float64) COMMENT 'pooled two-proportion z of ctr against rest_ctr',
    ctr_p_value Nullable(Float64) COMMENT 'two-sided; < 0.05: the difference is significant at 95 %',
    conversion_z Nullable(Float64),
    conversion_p_value Nullable(Float64)
) AS
SELECT
    {CAMPAIGN_DIMS}, v.delivered AS delivered, v.clicked AS clicked, v.converted AS converted,
    {_rate("clicked", "delivered")} AS ctr,
    {_rate("converted", "delivered")} AS conversion_rate,
    toUInt64(c.delivered - delivered) AS rest_delivered,
    toUInt64(c.clicked - clicked) AS rest_clicked,
    toUInt64(c.converted - converted) AS rest_converted,
    {_rate("rest_clicked", "rest_delivered")} AS rest_ctr,
    {_rate("rest_converted", "rest_delivered")} AS rest_conversion_rate,
    {_z_test("clicked", "rest_clicked", "delivered", "rest_delivered", 1)} AS ctr_z,
    {_z_test("clicked", "rest_clicked", "delivered", "rest_delivered", 2)} AS ctr_p_value,
    {_z_test("converted", "rest_converted", "delivered", "rest_delivered", 1)} AS conversion_z,
    {_z_test("converted", "rest_converted", "delivered", "rest_delivered", 2)} AS conversion_p_value
FROM (
    SELECT {CAMPAIGN_DIMS}, count() AS delivered, countIf(human_clicks > 0) AS clicked,
        countIf(conversions > 0) AS converted
    FROM {SENT_MESSAGES} WHERE delivery_status = 'delivered' GROUP BY {CAMPAIGN_DIMS}
) AS v
INNER JOIN (
    SELECT account, campaign, count() AS delivered, countIf(human_clicks > 0) AS clicked,
        countIf(conversions > 0) AS converted
    FROM {SENT_MESSAGES} WHERE delivery_status = 'delivered' GROUP BY account, campaign
) AS c USING (account, campaign)
COMMENT 'Each variant against the rest of its campaign: CTR and conversion of delivered messages, with a pooled two-proportion z-test (message-level trials).'
"""

FUNNEL_DROPOFF = f"""
CREATE OR REPLACE VIEW funnel_dropoff (
    account LowCardinality(String),
    campaign LowCardinality(String),
    variant LowCardinality(String),
    stage_index UInt8 COMMENT '1 sent, 2 delivered, 3 clicked, 4 landed, 5 engaged, 6 converted',
    stage String,
    count UInt64 COMMENT 'messages for sent, delivered, clicked; events for the later stages',
    previous_count Nullable(UInt64),
    rate_from_previous Nullable(Float64) COMMENT 'count / previous_count: what the stage keeps',
    rate_from_sent Nullable(Float64) COMMENT 'count / sent'
) AS
SELECT {CAMPAIGN_DIMS}, step.1 AS stage_index, step.2 AS stage, step.3 AS count,
    if(stage_index = 1, NULL, step.4) AS previous_count,
    if(stage_index = 1, NULL, {_rate("count", "step.4")}) AS rate_from_previous,
    {_rate("count", "sent_total")} AS rate_from_sent
FROM (
    SELECT {CAMPAIGN_DIMS}, sum(sent) AS sent_total,
        [
            (toUInt8(1), 'sent', sent_total, sent_total),
            (toUInt8(2), 'delivered', sum(delivered), sent_total),
            (toUInt8(3), 'clicked', sum(unique_human_clicks), sum(delivered)),
            (toUInt8(4), 'landed', sum(landings), sum(unique_human_clicks)),
            (toUInt8(5), 'engaged', sum(engagements), sum(landings)),
            (toUInt8(6), 'converted', sum(conversions), sum(engagements))
        ] AS stages
    FROM campaign_metrics GROUP BY {CAMPAIGN_DIMS}
)
ARRAY JOIN stages AS step
COMMENT 'The funnel stage by stage per campaign and variant: how many reach each stage and what each stage keeps of the one before (DOMAIN.md rates: landing, engagement, click-to-conversion).'
"""

SEGMENT_REVENUE = """
CREATE OR REPLACE VIEW segment_revenue (
    account LowCardinality(String),
    campaign LowCardinality(String),
    segment LowCardinality(String),
    model LowCardinality(String),
    currency LowCardinality(String),
    attributed_revenue Decimal(76, 30),
    sent UInt64 COMMENT 'every message of the segment, with or without revenue',
    revenue_per_message Nullable(Decimal(76, 30)) COMMENT 'attributed_revenue / sent'
) AS
SELECT account, campaign, segment, model, currency, r.revenue AS attributed_revenue,
    s.sent_total AS sent, attributed_revenue / nullIf(sent, 0) AS revenue_per_message
FROM (
    SELECT account, campaign, segment, model, currency, sum(attributed_revenue) AS revenue
    FROM attributed_revenue GROUP BY account, campaign, segment, model, currency
) AS r
INNER JOIN (
    SELECT account, campaign, segment, sum(sent) AS sent_total
    FROM campaign_metrics GROUP BY account, campaign, segment
) AS s USING (account, campaign, segment)
COMMENT 'Attributed revenue per audience segment, model and currency, with revenue per message.'
"""


def daily_trends(after_window: bool, net: bool = False) -> str:
    """The daily_trends view; `after_window` as in campaign_metrics; `net` (from migration 15):
    revenue net of refunds, chargebacks and corrections."""
    source = hourly.net_sent_messages() if net else SENT_MESSAGES
    comment = (
        "conversions through these messages inside their window, by currency, net of refunds "
        "and corrections"
        if net
        else "conversions through these messages inside their window, by currency"
    )
    columns = (
        ",\n    after_window_conversions UInt64 COMMENT 'conversions after their attribution window'"
        ",\n    after_window_revenue Map(String, Decimal(38, 10)) COMMENT 'their revenue, by currency'"
        if after_window
        else ""
    )
    measures = (
        ", sum(after_window_conversions) AS after_window_conversions, "
        "sumMap(after_window_revenue) AS after_window_revenue"
        if after_window
        else ""
    )
    return f"""
CREATE OR REPLACE VIEW daily_trends (
    account LowCardinality(String),
    campaign LowCardinality(String),
    day Date COMMENT 'UTC day of the send (the cohort)',
    sent UInt64,
    delivered UInt64,
    clicked UInt64 COMMENT 'messages with a human click',
    conversions UInt64,
    delivery_rate Nullable(Float64),
    ctr Nullable(Float64) COMMENT 'clicked / delivered',
    revenue Map(String, Decimal(38, 10)) COMMENT '{comment}'{columns}
) AS
SELECT account, campaign, toDate(send_hour) AS day, count() AS sent,
    countIf(delivery_status = 'delivered') AS delivered,
    countIf(human_clicks > 0) AS clicked, sum(conversions) AS conversions,
    {_rate("delivered", "sent")} AS delivery_rate, {_rate("clicked", "delivered")} AS ctr,
    sumMap(revenue) AS revenue {measures}
FROM {source}
GROUP BY account, campaign, day
COMMENT 'Per campaign and send day: the trend lines of a dashboard.'
"""


DAILY_TRENDS_V4 = daily_trends(after_window=False)
DAILY_TRENDS_V14 = daily_trends(after_window=True)
DAILY_TRENDS = daily_trends(after_window=True, net=True)

SEND_TIME_HEATMAP = f"""
CREATE OR REPLACE VIEW send_time_heatmap (
    account LowCardinality(String),
    campaign LowCardinality(String),
    local_weekday UInt8 COMMENT '1 Monday - 7 Sunday, in the recipient''s zone (UTC if unknown)',
    local_hour UInt8 COMMENT '0-23 in the recipient''s zone (UTC if unknown)',
    sent UInt64,
    delivered UInt64,
    clicked UInt64 COMMENT 'delivered messages with a human click',
    converted UInt64 COMMENT 'delivered messages with a conversion',
    ctr Nullable(Float64) COMMENT 'clicked / delivered',
    conversion_rate Nullable(Float64) COMMENT 'converted / delivered',
    unknown_zone UInt64 COMMENT 'messages placed by UTC because the recipient zone is unknown'
) AS
SELECT account, campaign, send_local_weekday AS local_weekday, send_local_hour AS local_hour,
    count() AS sent, countIf(delivery_status = 'delivered') AS delivered,
    countIf(delivery_status = 'delivered' AND human_clicks > 0) AS clicked,
    countIf(delivery_status = 'delivered' AND conversions > 0) AS converted,
    {_rate("clicked", "delivered")} AS ctr, {_rate("converted", "delivered")} AS conversion_rate,
    countIf(recipient_timezone = '') AS unknown_zone
FROM {SENT_MESSAGES}
GROUP BY account, campaign, local_weekday, local_hour
COMMENT 'When to send: CTR and conversion by the recipient''s local weekday and hour of the send.'
"""

# The linear model credits every touch inside a conversion's window with 1/n (never 0), so its
# credit rows list exactly the in-window touches.
WINDOW_CONVERSIONS = f"""
CREATE OR REPLACE VIEW window_conversions (
    {DIM_COLUMNS}
    human_clicks UInt64,
    converting_clicks UInt64 COMMENT 'human clicks inside the attribution window of a conversion',
    window_conversion_rate Nullable(Float64) COMMENT 'converting_clicks / human_clicks'
) AS
SELECT {DIMS}, m.clicks_total AS human_clicks, ifNull(w.converting, 0) AS converting_clicks,
    {_rate("converting_clicks", "human_clicks")} AS window_conversion_rate
FROM (
    SELECT {DIMS}, sum(human_clicks) AS clicks_total FROM {SENT_MESSAGES} GROUP BY {DIMS}
) AS m
LEFT JOIN (
    SELECT {DIMS}, uniqExact(touch_id) AS converting
    FROM (
        SELECT account, touch_id, message_id
        FROM attribution_credits FINAL
        ARRAY JOIN touch_ids AS touch_id, touch_kinds AS kind, message_ids AS message_id
        WHERE model = 'linear' AND kind = 'click'
    ) AS t
    INNER JOIN {SENT_MESSAGES} AS f USING (account, message_id)
    GROUP BY {DIMS}
) AS w USING ({DIMS})
SETTINGS join_use_nulls = 1
COMMENT 'Window conversion rate (DOMAIN.md): clicks converting within the attribution window / clicks.'
"""

SUBSCRIBER_GROWTH = """
CREATE OR REPLACE VIEW subscriber_growth (
    account LowCardinality(String),
    sender LowCardinality(String) COMMENT 'opt-outs and opt-ins are per sender',
    day Date COMMENT 'UTC day the inbound SMS was sent',
    opt_ins UInt64 COMMENT 'START, UNSTOP, YES',
    opt_outs UInt64 COMMENT 'STOP-family keywords',
    net_growth Int64 COMMENT 'opt_ins - opt_outs',
    help_requests UInt64,
    replies UInt64
) AS
SELECT account, sender, toDate(occurred_at) AS day,
    countIf(kind = 'opt_in') AS opt_ins, countIf(kind = 'opt_out') AS opt_outs,
    toInt64(opt_ins) - toInt64(opt_outs) AS net_growth,
    countIf(kind = 'help') AS help_requests, countIf(kind = 'reply') AS replies
FROM inbound_events FINAL
GROUP BY account, sender, day
COMMENT 'Subscriber growth (DOMAIN.md): opt-ins minus opt-outs per sender and day.'
"""

ORPHAN_MESSAGES = """
CREATE OR REPLACE VIEW orphan_messages (
    account LowCardinality(String),
    message_id String,
    first_event_at DateTime64(6, 'UTC'),
    last_event_at DateTime64(6, 'UTC'),
    events UInt32 COMMENT 'distinct events received for it',
    receipts UInt16,
    clicks UInt32,
    conversions UInt32,
    revenue Map(String, Decimal(38, 10)) COMMENT 'conversions through it, not attributed'
) AS
SELECT account, message_id, first_event_at, last_event_at, version AS events, receipts, clicks,
    conversions, revenue
FROM funnel_rows FINAL
WHERE NOT has_send
COMMENT 'Orphans: messages with receipts, clicks or conversions but no send event (yet). Kept, never dropped; they join their funnel the moment the send arrives, and are not attributed until then.'
"""

LATE_EVENTS = f"""
CREATE TABLE IF NOT EXISTS late_events (
    account LowCardinality(String),
    message_id String,
    event_id String,
    event_type LowCardinality(String),
    occurred_at {TS},
    reason LowCardinality(String) COMMENT 'after_window, window_closed or orphan (schemas/late_event.py)',
    campaign LowCardinality(String) COMMENT 'empty when the send is unknown or already evicted',
    horizon Nullable({TS}) COMMENT 'the message horizon (send + two windows) when known',
    watermark Nullable({TS}) COMMENT 'the partition watermark when the decision was taken',
    payload String COMMENT 'the event as received, when the join still had it'
)
ENGINE = ReplacingMergeTree
ORDER BY (account, event_id)
SETTINGS {DEDUP}
COMMENT 'Events the join did not count in a funnel row, and why. Never dropped silently.'
"""

UNATTRIBUTABLE_CONVERSIONS = f"""
CREATE TABLE IF NOT EXISTS unattributable_conversions (
    account LowCardinality(String),
    event_id String,
    source LowCardinality(String) COMMENT 'postback, everflow, tune or shopify',
    reason String COMMENT 'why nothing ties it to an SMS (schemas/unattributable.py)',
    order_id String,
    click_id String COMMENT 'as sent; empty when it came without one',
    name LowCardinality(String) COMMENT 'conversion event name',
    amount Decimal(38, 10),
    currency LowCardinality(String),
    occurred_at {TS},
    received_at {TS},
    payload String COMMENT 'the request as received, credentials removed'
)
ENGINE = ReplacingMergeTree
ORDER BY (account, event_id)
SETTINGS {DEDUP}
COMMENT 'Conversions nothing ties to an SMS touch, kept with their reason; a retry replaces its own row (read with FINAL).'
"""

LATE_EVENT_SUMMARY = """
CREATE OR REPLACE VIEW late_event_summary (
    account LowCardinality(String),
    reason LowCardinality(String),
    event_type LowCardinality(String),
    day Date COMMENT 'event day (UTC)',
    events UInt64
) AS
SELECT account, reason, event_type, toDate(occurred_at) AS day, count() AS events
FROM late_events FINAL
GROUP BY account, reason, event_type, day
COMMENT 'Late and orphan events per reason, type and event day.'
"""

# attribution_credits as migration 11 makes it (and as 10 left it, for going back): `{name}` is
# the table being created
CREDITS_COLUMNS = f"""
    account LowCardinality(String),
    recipient_hash String,
    order_id String,
    model LowCardinality(String),
    version UInt64 COMMENT 'subscriber state version; highest is current',
    conversion_event_id String,
    source_message_id String COMMENT 'empty for subscriber-only conversions',
    name LowCardinality(String),
    converted_at {TS},
    amount Decimal(38, 10),
    currency LowCardinality(String),
    touch_ids Array(String),
    touch_kinds Array(LowCardinality(String)),
    message_ids Array(String),
    campaigns Array(LowCardinality(String)),
    touched_at Array({TS}),
    weights Array(Decimal(38, 20)) COMMENT 'sum to exactly 1, or empty: unattributed'"""
CREDITS_V10 = (
    "CREATE TABLE IF NOT EXISTS {name} ("
    + CREDITS_COLUMNS
    + ") ENGINE = ReplacingMergeTree(version) "
    "ORDER BY (account, recipient_hash, order_id, model) "
    f"SETTINGS {DEDUP}"
)
CREDITS_V11 = (
    "CREATE TABLE IF NOT EXISTS {name} ("
    + CREDITS_COLUMNS
    + ",\n    withdrawn UInt8 DEFAULT 0 COMMENT '1: no longer a conversion; FINAL hides it'"
    + ") ENGINE = ReplacingMergeTree(version, withdrawn) "
    "ORDER BY (account, recipient_hash, order_id, model) "
    f"SETTINGS {DEDUP}"
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "funnel rows, hourly aggregates, dead letters",
        up=(
            f"""
            CREATE TABLE IF NOT EXISTS funnel_rows (
                account LowCardinality(String),
                message_id String,
                version UInt32 COMMENT 'distinct events folded in; highest = most complete',
                has_send Bool COMMENT 'false: events seen for a message whose send is not',
                campaign LowCardinality(String),
                variant LowCardinality(String),
                segment LowCardinality(String),
                sender LowCardinality(String),
                country LowCardinality(String),
                carrier LowCardinality(String),
                sent_at Nullable({TS}),
                send_hour DateTime('UTC') COMMENT 'cohort hour of the send (epoch if no send)',
                parts UInt8,
                cost Decimal(38, 10),
                cost_currency LowCardinality(String),
                delivery_status LowCardinality(String) COMMENT 'canonical; empty: no receipt',
                delivery_status_at Nullable({TS}),
                receipts UInt16,
                clicks UInt32 COMMENT 'distinct click events',
                first_click_at Nullable({TS}),
                conversions UInt32,
                revenue Map(String, Decimal(38, 10)) COMMENT 'by currency',
                first_event_at {TS},
                last_event_at {TS},
                ingested_at {TS} DEFAULT now64(6)
            )
            ENGINE = ReplacingMergeTree(version)
            ORDER BY (account, message_id)
            SETTINGS {DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS funnel_hourly (
                account LowCardinality(String),
                campaign LowCardinality(String),
                variant LowCardinality(String),
                segment LowCardinality(String),
                send_hour DateTime('UTC'),
                sent UInt64 COMMENT 'messages attempted',
                delivered UInt64,
                undelivered UInt64,
                expired UInt64,
                rejected UInt64 COMMENT 'dropped before the handset network',
                unknown UInt64,
                pending UInt64 COMMENT 'no final receipt yet',
                clicks UInt64 COMMENT 'distinct click events',
                clicked_messages UInt64 COMMENT 'messages with at least one click',
                converting_messages UInt64,
                conversions UInt64,
                revenue Map(String, Decimal(38, 10)),
                cost Map(String, Decimal(38, 10)),
                computed_at {TS}
            )
            ENGINE = ReplacingMergeTree(computed_at)
            ORDER BY (account, campaign, variant, segment, send_hour)
            """,
            f"""
            CREATE TABLE IF NOT EXISTS dead_letters (
                stage LowCardinality(String),
                source_topic LowCardinality(String),
                source_partition UInt32,
                source_offset UInt64,
                key_b64 String,
                payload_b64 String,
                reason String,
                failed_at {TS}
            )
            ENGINE = ReplacingMergeTree
            ORDER BY (stage, source_topic, source_partition, source_offset)
            SETTINGS {DEDUP}
            """,
        ),
        down=(
            "DROP TABLE IF EXISTS dead_letters",
            "DROP TABLE IF EXISTS funnel_hourly",
            "DROP TABLE IF EXISTS funnel_rows",
        ),
    ),
    Migration(
        2,
        "full funnel: human clicks, landings, engagements, causes; attribution; responses",
        up=(
            """
            ALTER TABLE funnel_rows
                ADD COLUMN IF NOT EXISTS recipient_hash String
                    COMMENT 'keyed HMAC of the number, never the number' AFTER sender,
                ADD COLUMN IF NOT EXISTS failure_cause LowCardinality(String)
                    AFTER delivery_status_at,
                ADD COLUMN IF NOT EXISTS human_clicks UInt32
                    COMMENT 'clicks less previews, scanners, HEAD and on-delivery fetches'
                    AFTER clicks,
                ADD COLUMN IF NOT EXISTS first_human_click_at Nullable(DateTime64(6, 'UTC'))
                    AFTER first_click_at,
                ADD COLUMN IF NOT EXISTS landings UInt32 AFTER first_human_click_at,
                ADD COLUMN IF NOT EXISTS engagements UInt32 AFTER landings,
                ADD COLUMN IF NOT EXISTS discarded_conversions UInt32
                    COMMENT 'repeats of an order id or of a (click id, name)' AFTER conversions
            """,
            """
            ALTER TABLE funnel_hourly
                ADD COLUMN IF NOT EXISTS human_clicks UInt64 AFTER clicks,
                ADD COLUMN IF NOT EXISTS landings UInt64 AFTER clicked_messages,
                ADD COLUMN IF NOT EXISTS engagements UInt64 AFTER landings,
                COMMENT COLUMN clicked_messages 'messages with at least one human click'
            """,
            f"""
            CREATE TABLE IF NOT EXISTS attribution_credits (
                account LowCardinality(String),
                recipient_hash String,
                order_id String,
                model LowCardinality(String),
                version UInt64 COMMENT 'subscriber state version; highest is current',
                conversion_event_id String,
                source_message_id String COMMENT 'empty for subscriber-only conversions',
                name LowCardinality(String),
                converted_at {TS},
                amount Decimal(38, 10),
                currency LowCardinality(String),
                touch_ids Array(String),
                touch_kinds Array(LowCardinality(String)),
                message_ids Array(String),
                campaigns Array(LowCardinality(String)),
                touched_at Array({TS}),
                weights Array(Decimal(38, 20)) COMMENT 'sum to exactly 1, or empty: unattributed'
            )
            ENGINE = ReplacingMergeTree(version)
            ORDER BY (account, recipient_hash, order_id, model)
            SETTINGS {DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS message_responses (
                account LowCardinality(String),
                recipient_hash String,
                message_id String COMMENT 'empty: no earlier delivery from that sender',
                sender LowCardinality(String),
                version UInt64,
                opt_outs UInt32,
                first_opt_out_at Nullable({TS}),
                opt_ins UInt32,
                help_requests UInt32,
                replies UInt32,
                first_response_at Nullable({TS})
            )
            ENGINE = ReplacingMergeTree(version)
            ORDER BY (account, recipient_hash, message_id, sender)
            SETTINGS {DEDUP}
            """,
        ),
        down=(
            "DROP TABLE IF EXISTS message_responses",
            "DROP TABLE IF EXISTS attribution_credits",
            "ALTER TABLE funnel_hourly DROP COLUMN IF EXISTS human_clicks, "
            "DROP COLUMN IF EXISTS landings, DROP COLUMN IF EXISTS engagements",
            "ALTER TABLE funnel_rows DROP COLUMN IF EXISTS recipient_hash, "
            "DROP COLUMN IF EXISTS failure_cause, DROP COLUMN IF EXISTS human_clicks, "
            "DROP COLUMN IF EXISTS first_human_click_at, DROP COLUMN IF EXISTS landings, "
            "DROP COLUMN IF EXISTS engagements, DROP COLUMN IF EXISTS discarded_conversions",
        ),
    ),
    Migration(
        3,
        "metric views: campaign metrics, failure causes, attributed revenue, response times",
        up=(CAMPAIGN_METRICS_V3, FAILURE_CAUSES, ATTRIBUTED_REVENUE_V3, RESPONSE_TIMES),
        down=(
            "DROP VIEW IF EXISTS response_times",
            "DROP VIEW IF EXISTS attributed_revenue",
            "DROP VIEW IF EXISTS failure_causes",
            "DROP VIEW IF EXISTS campaign_metrics",
        ),
    ),
    Migration(
        4,
        "analyses: variant comparison with significance, funnel drop-off, segment revenue, trends",
        up=(VARIANT_COMPARISON, FUNNEL_DROPOFF, SEGMENT_REVENUE, DAILY_TRENDS_V4),
        down=(
            "DROP VIEW IF EXISTS daily_trends",
            "DROP VIEW IF EXISTS segment_revenue",
            "DROP VIEW IF EXISTS funnel_dropoff",
            "DROP VIEW IF EXISTS variant_comparison",
        ),
    ),
    Migration(
        5,
        "recipient's local send time and the send-time heatmap",
        up=(
            """
            ALTER TABLE funnel_rows
                ADD COLUMN IF NOT EXISTS recipient_timezone LowCardinality(String)
                    COMMENT 'IANA zone of the recipient; empty: unknown' AFTER send_hour,
                ADD COLUMN IF NOT EXISTS send_local_hour UInt8
                    COMMENT 'hour of the send in the recipient zone (UTC if unknown)'
                    AFTER recipient_timezone,
                ADD COLUMN IF NOT EXISTS send_local_weekday UInt8
                    COMMENT '1 Monday - 7 Sunday in the recipient zone; 0: no send'
                    AFTER send_local_hour
            """,
            SEND_TIME_HEATMAP,
        ),
        down=(
            "DROP VIEW IF EXISTS send_time_heatmap",
            "ALTER TABLE funnel_rows DROP COLUMN IF EXISTS recipient_timezone, "
            "DROP COLUMN IF EXISTS send_local_hour, DROP COLUMN IF EXISTS send_local_weekday",
        ),
    ),
    Migration(
        6,
        "window conversion rate",
        up=(WINDOW_CONVERSIONS,),
        down=("DROP VIEW IF EXISTS window_conversions",),
    ),
    Migration(
        7,
        "inbound SMS events and subscriber growth",
        up=(
            f"""
            CREATE TABLE IF NOT EXISTS inbound_events (
                account LowCardinality(String),
                event_id String,
                recipient_hash String COMMENT 'keyed HMAC of the number, never the number',
                sender LowCardinality(String),
                kind LowCardinality(String) COMMENT 'opt_out, opt_in, help, reply',
                keyword LowCardinality(String),
                needs_review Bool COMMENT 'a reply that mentions a STOP word',
                occurred_at {TS}
            )
            ENGINE = ReplacingMergeTree
            ORDER BY (account, event_id)
            SETTINGS {DEDUP}
            """,
            SUBSCRIBER_GROWTH,
        ),
        down=("DROP VIEW IF EXISTS subscriber_growth", "DROP TABLE IF EXISTS inbound_events"),
    ),
    Migration(
        8,
        "hourly aggregates also by sender, country, carrier and the recipient's local time",
        # The aggregate is derived from funnel_rows: rebuilt whole rather than altered (its sort
        # key gains columns, and old coarser rows would otherwise be summed with the new ones).
        up=(
            "DROP TABLE IF EXISTS funnel_hourly",
            hourly.create_table(hourly.DIMENSIONS, hourly.MEASURES_V8),
            hourly.aggregate_sql(hourly.DIMENSIONS, "1", hourly.MEASURES_V8, net=False),
        ),
        down=(
            "DROP TABLE IF EXISTS funnel_hourly",
            hourly.create_table(hourly.DIMENSIONS_V1, hourly.MEASURES_V8),
            hourly.aggregate_sql(hourly.DIMENSIONS_V1, "1", hourly.MEASURES_V8, net=False),
        ),
    ),
    Migration(
        9,
        "orphan messages",
        up=(ORPHAN_MESSAGES,),
        down=("DROP VIEW IF EXISTS orphan_messages",),
    ),
    Migration(
        10,
        "late and orphan events",
        up=(LATE_EVENTS, LATE_EVENT_SUMMARY),
        down=("DROP VIEW IF EXISTS late_event_summary", "DROP TABLE IF EXISTS late_events"),
    ),
    Migration(
        11,
        "withdrawn credit sets: an order that stopped being a conversion is hidden by FINAL",
        # The engine gains its is_deleted column, so the table is rebuilt and swapped in; the
        # views read it by name and FINAL, and need no change.
        up=(
            CREDITS_V11.format(name="attribution_credits_v11"),
            "INSERT INTO attribution_credits_v11 SELECT *, 0 FROM attribution_credits",
            "EXCHANGE TABLES attribution_credits AND attribution_credits_v11",
            "DROP TABLE IF EXISTS attribution_credits_v11",
        ),
        down=(
            CREDITS_V10.format(name="attribution_credits_v10"),
            "INSERT INTO attribution_credits_v10 SELECT * EXCEPT withdrawn "
            "FROM attribution_credits FINAL",
            "EXCHANGE TABLES attribution_credits AND attribution_credits_v10",
            "DROP TABLE IF EXISTS attribution_credits_v10",
        ),
    ),
    Migration(
        12,
        "unattributable conversions: postbacks whose click id does not verify, orders with "
        "neither click id nor phone",
        up=(UNATTRIBUTABLE_CONVERSIONS,),
        down=("DROP TABLE IF EXISTS unattributable_conversions",),
    ),
    Migration(
        13,
        "window-bound conversions: conversions and revenue count inside the attribution "
        "window from their click; later ones are their own figure",
        up=(
            """
            ALTER TABLE funnel_rows
                COMMENT COLUMN conversions 'inside the campaign attribution window from the click they carry, after dedup (one per order id, one per click id and name)',
                COMMENT COLUMN revenue 'of those conversions, by currency',
                ADD COLUMN IF NOT EXISTS after_window_conversions UInt32
                    COMMENT 'kept after dedup, but after the attribution window from their click: not in conversions or revenue'
                    AFTER revenue,
                ADD COLUMN IF NOT EXISTS after_window_revenue Map(String, Decimal(38, 10))
                    COMMENT 'of the after-window conversions, by currency'
                    AFTER after_window_conversions
            """,
        ),
        down=(
            "ALTER TABLE funnel_rows DROP COLUMN IF EXISTS after_window_revenue, "
            "DROP COLUMN IF EXISTS after_window_conversions",
        ),
    ),
    Migration(
        14,
        "after-window conversions in the hourly aggregate and the views; each row's attribution "
        "window; attributed revenue for every group of sent messages, earning or not",
        up=(
            """
            ALTER TABLE funnel_rows
                ADD COLUMN IF NOT EXISTS attribution_window_hours UInt32
                    COMMENT 'the window its conversions are bound by: its campaign''s, else 168 (7 days); 0: no send yet'
                    AFTER after_window_revenue
            """,
            # derived from funnel_rows: rebuilt whole, as in migration 8
            "DROP TABLE IF EXISTS funnel_hourly",
            hourly.create_table(hourly.DIMENSIONS),
            hourly.aggregate_sql(hourly.DIMENSIONS, "1", net=False),
            CAMPAIGN_METRICS,
            DAILY_TRENDS_V14,
            ATTRIBUTED_REVENUE_V14,
        ),
        down=(
            ATTRIBUTED_REVENUE_V3,
            DAILY_TRENDS_V4,
            CAMPAIGN_METRICS_V3,
            "DROP TABLE IF EXISTS funnel_hourly",
            hourly.create_table(hourly.DIMENSIONS, hourly.MEASURES_V8),
            hourly.aggregate_sql(hourly.DIMENSIONS, "1", hourly.MEASURES_V8, net=False),
            "ALTER TABLE funnel_rows DROP COLUMN IF EXISTS attribution_window_hours",
        ),
    ),
    Migration(
        15,
        "refunds, chargebacks and corrections: signed adjustments by order id; attributed "
        "revenue net of them; adjustments of unknown orders listed",
        up=(
            CONVERSION_ADJUSTMENTS,
            """
            ALTER TABLE funnel_rows
                ADD COLUMN IF NOT EXISTS order_ids Array(String)
                    COMMENT 'order ids of the conversions counted in conversions and revenue'
                    AFTER attribution_window_hours
            """,
            "DROP TABLE IF EXISTS funnel_hourly",
            hourly.create_table(hourly.DIMENSIONS),
            hourly.aggregate_sql(hourly.DIMENSIONS, "1"),
            DAILY_TRENDS,
            ATTRIBUTED_REVENUE,
            UNATTRIBUTABLE_ADJUSTMENTS,
        ),
        down=(
            "DROP VIEW IF EXISTS unattributable_adjustments",
            ATTRIBUTED_REVENUE_V14,
            DAILY_TRENDS_V14,
            "DROP TABLE IF EXISTS funnel_hourly",
            hourly.create_table(hourly.DIMENSIONS),
            hourly.aggregate_sql(hourly.DIMENSIONS, "1", net=False),
            "ALTER TABLE funnel_rows DROP COLUMN IF EXISTS order_ids",
            "DROP TABLE IF EXISTS conversion_adjustments",
        ),
    ),
    Migration(
        16,
        "revenue per message with its spread: variant tests and send-time revenue",
        up=(VARIANT_REVENUE_TESTS, SEND_TIME_REVENUE),
        down=("DROP VIEW IF EXISTS send_time_revenue", "DROP VIEW IF EXISTS variant_revenue_tests"),
    ),
)
