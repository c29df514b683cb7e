"""Views of revenue per message with its spread (issue 13): the sufficient statistics of a mean
(messages, sum, sum of squares) per group of sent messages, model and currency, so a test of
revenue per message or an interval around it needs no message-level scan downstream.

Each message's revenue is its net attributed credit under one model (sum over conversions of
amount x weight, adjustments included); a sent message without a credit earns 0 and counts in
the mean. Every group gets a row for every model and currency its campaign has revenue or cost
in, so a variant that earned nothing shows 0 beside the ones that did (never no row).
"""

from __future__ import annotations

from sinks.migrations.sql_parts import (
    MODELS_ARRAY,
    NET_CREDIT_LINES,
    SENT_MESSAGES,
    z_test,
)

MESSAGE_REVENUE = f"""
    SELECT account, model, currency, message_id,
        sum(toDecimal256(amount, 10) * toDecimal256(weight, 20)) AS message_revenue
    FROM ({NET_CREDIT_LINES}
    )
    GROUP BY account, model, currency, message_id"""


def moments(dims: str) -> str:
    """Per `dims` (funnel_rows columns, starting with account, campaign) x model x currency:
    m_sent, m_delivered, m_converted (delivered messages with a conversion), m_earning (messages
    with revenue > 0), m_revenue (exact) and m_squares (sum of each message's revenue squared)."""
    return f"""
    SELECT {dims}, model, currency, s.n_sent AS m_sent, s.n_delivered AS m_delivered,
        s.n_converted AS m_converted, v.n_earning AS m_earning, v.n_revenue AS m_revenue,
        v.n_squares AS m_squares
    FROM (
        SELECT {dims}, count() AS n_sent, countIf(delivery_status = 'delivered') AS n_delivered,
            countIf(delivery_status = 'delivered' AND conversions > 0) AS n_converted
        FROM {SENT_MESSAGES} GROUP BY {dims}
    ) AS s
    INNER JOIN (
        SELECT DISTINCT account, campaign, model, currency FROM (
            SELECT account, f.campaign AS campaign, model, currency
            FROM ({MESSAGE_REVENUE}) AS r
            INNER JOIN {SENT_MESSAGES} AS f USING (account, message_id)
            UNION ALL
            SELECT account, campaign, model, cost_currency AS currency
            FROM {SENT_MESSAGES} ARRAY JOIN {MODELS_ARRAY} AS model WHERE cost_currency != ''
        )
    ) AS k USING (account, campaign)
    LEFT JOIN (
        SELECT {dims}, model, currency, countIf(message_revenue > 0) AS n_earning,
            sum(message_revenue) AS n_revenue, sum(pow(toFloat64(message_revenue), 2)) AS n_squares
        FROM ({MESSAGE_REVENUE}) AS r
        INNER JOIN {SENT_MESSAGES} AS f USING (account, message_id)
        GROUP BY {dims}, model, currency
    ) AS v USING ({dims}, model, currency)"""


def _mean(total: str, n: str) -> str:
    return f"if({n} = 0, NULL, toFloat64({total}) / {n})"


def _stddev(total: str, squares: str, n: str) -> str:
    """Sample standard deviation from the sum and the sum of squares (clamped at 0: the
    subtraction can leave a rounding residue below it)."""
    return (
        f"if({n} < 2, NULL, sqrt(greatest(({squares} - pow(toFloat64({total}), 2) / {n}) "
        f"/ ({n} - 1), 0)))"
    )


def _welch(part: str) -> str:
    """Welch's z of the variant's mean revenue per message against the pooled rest's: the
    difference over sqrt(s1^2/n1 + s2^2/n2), NULL where a side has under two messages or
    neither side varies. `part`: 'z', or 'p' for the two-sided normal p-value."""
    se = "sqrt(pow(revenue_stddev, 2) / sent + pow(rest_revenue_stddev, 2) / rest_sent)"
    z = f"(revenue_per_message - rest_revenue_per_message) / {se}"
    undefined = "sent < 2 OR rest_sent < 2 OR revenue_stddev + rest_revenue_stddev = 0"
    value = z if part == "z" else f"erfc(abs({z}) / sqrt(2))"
    return f"if({undefined}, NULL, {value})"


# The outer subqueries are aliased: without one, ClickHouse's parser does not take the view's
# COMMENT after them (EXPLAIN AST, which the cluster DDL test runs, fails on it).
VARIANT_REVENUE_TESTS = f"""
CREATE OR REPLACE VIEW variant_revenue_tests (
    account LowCardinality(String),
    campaign LowCardinality(String),
    variant LowCardinality(String),
    model LowCardinality(String),
    currency LowCardinality(String),
    variants UInt64 COMMENT 'variants in the campaign: the family a verdict corrects for',
    sent UInt64,
    delivered UInt64,
    converted UInt64 COMMENT 'delivered messages with a conversion inside their window',
    earning UInt64 COMMENT 'messages with attributed revenue above 0 under this model',
    revenue Decimal(76, 30) COMMENT 'attributed revenue, net of adjustments',
    revenue_squares Float64 COMMENT 'sum over messages of each one''s revenue squared',
    revenue_per_message Nullable(Float64) COMMENT 'revenue / sent',
    revenue_stddev Nullable(Float64) COMMENT 'sample standard deviation of one message''s revenue',
    conversion_rate Nullable(Float64) COMMENT 'converted / delivered',
    rest_sent UInt64 COMMENT 'the other variants of the campaign, pooled',
    rest_delivered UInt64,
    rest_converted UInt64,
    rest_earning UInt64,
    rest_revenue Decimal(76, 30),
    rest_revenue_per_message Nullable(Float64),
    rest_revenue_stddev Nullable(Float64),
    rest_conversion_rate Nullable(Float64),
    rpm_z Nullable(Float64) COMMENT 'Welch z of revenue_per_message against the rest''s',
    rpm_p_value Nullable(Float64) COMMENT 'two-sided, normal approximation',
    conversion_z Nullable(Float64) COMMENT 'pooled two-proportion z of conversion_rate',
    conversion_p_value Nullable(Float64)
) AS
SELECT account, campaign, variant, model, currency, w_variants AS variants,
    m_sent AS sent, m_delivered AS delivered, m_converted AS converted, m_earning AS earning,
    m_revenue AS revenue, m_squares AS revenue_squares,
    {_mean("m_revenue", "m_sent")} AS revenue_per_message,
    {_stddev("m_revenue", "m_squares", "m_sent")} AS revenue_stddev,
    {_mean("m_converted", "m_delivered")} AS conversion_rate,
    toUInt64(w_sent - m_sent) AS rest_sent, toUInt64(w_delivered - m_delivered) AS rest_delivered,
    toUInt64(w_converted - m_converted) AS rest_converted, toUInt64(w_earning - m_earning) AS rest_earning,
    w_revenue - m_revenue AS rest_revenue,
    {_mean("rest_revenue", "rest_sent")} AS rest_revenue_per_message,
    {_stddev("rest_revenue", "w_squares - m_squares", "rest_sent")} AS rest_revenue_stddev,
    {_mean("rest_converted", "rest_delivered")} AS rest_conversion_rate,
    {_welch("z")} AS rpm_z,
    {_welch("p")} AS rpm_p_value,
    {z_test("converted", "rest_converted", "delivered", "rest_delivered", 1)} AS conversion_z,
    {z_test("converted", "rest_converted", "delivered", "rest_delivered", 2)} AS conversion_p_value
FROM (
    SELECT *, count() OVER w AS w_variants, sum(m_sent) OVER w AS w_sent,
        sum(m_delivered) OVER w AS w_delivered, sum(m_converted) OVER w AS w_converted,
        sum(m_earning) OVER w AS w_earning, sum(m_revenue) OVER w AS w_revenue,
        sum(m_squares) OVER w AS w_squares
    FROM ({moments("account, campaign, variant")}
    )
    WINDOW w AS (PARTITION BY account, campaign, model, currency)
) AS tested
COMMENT 'Each variant against the rest of its campaign on revenue per message (Welch z, normal approximation) and conversion rate (pooled two-proportion z), per model and currency, with the sums a verdict and a sample size are computed from (smsfunnel verdicts).'
"""

SEND_TIME_REVENUE = f"""
CREATE OR REPLACE VIEW send_time_revenue (
    account LowCardinality(String),
    campaign LowCardinality(String),
    segment LowCardinality(String) COMMENT 'audience (utm_term)',
    local_weekday UInt8 COMMENT '1 Monday - 7 Sunday, in the recipient''s zone (UTC if unknown)',
    local_hour UInt8 COMMENT '0-23 in the recipient''s zone (UTC if unknown)',
    model LowCardinality(String),
    currency LowCardinality(String),
    sent UInt64,
    earning UInt64 COMMENT 'messages with attributed revenue above 0 under this model',
    revenue Decimal(76, 30) COMMENT 'attributed revenue, net of adjustments',
    revenue_squares Float64 COMMENT 'sum over messages of each one''s revenue squared',
    revenue_per_message Nullable(Float64) COMMENT 'revenue / sent'
) AS
SELECT account, campaign, segment, send_local_weekday AS local_weekday,
    send_local_hour AS local_hour, model, currency, m_sent AS sent, m_earning AS earning,
    m_revenue AS revenue, m_squares AS revenue_squares,
    {_mean("m_revenue", "m_sent")} AS revenue_per_message
FROM ({moments("account, campaign, segment, send_local_weekday, send_local_hour")}
) AS slots
COMMENT 'When each segment earns: revenue per message by the recipient''s local weekday and hour of the send, per model and currency, with the sums an interval is computed from (smsfunnel send-times). Roll up by summing sent, revenue and revenue_squares.'
"""
