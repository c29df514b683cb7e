"""The figures campaign-health diagnostics read (sinks/health_rules.py), as ClickHouse
queries over the hourly aggregate and, for opt-outs, over the message responses.

Each query takes {a:String} (account), {as_of:DateTime} (end of the recent period),
{recent:UInt32} and {baseline:UInt32} (the two periods' lengths in hours) and returns one row
per campaign, subject (a sender, segment or carrier; '' for the campaign) and period
('recent' or 'baseline'). Messages count in the period of the hour they were sent in.
"""

from __future__ import annotations

SUBJECTS = ("", "sender", "segment", "carrier")

_PERIOD = (
    "if(send_hour >= {as_of:DateTime} - toIntervalHour({recent:UInt32}), 'recent', 'baseline')"
)
_RANGE = (
    "send_hour >= {as_of:DateTime} - toIntervalHour({recent:UInt32} + {baseline:UInt32}) "
    "AND send_hour < {as_of:DateTime}"
)


def cohort_figures(subject: str, across_campaigns: bool = False) -> str:
    """Sent, final (a final receipt: sent less pending), delivered, dropped (rejected before
    the handset network), clicked (messages with a human click), landings, converting
    messages, the variants sent, the first send hour and the campaigns, per campaign (''
    when `across_campaigns`), `subject` and period."""
    assert subject in SUBJECTS, subject
    column = subject or "''"
    campaign = "''" if across_campaigns else "campaign"
    # Aggregates under names no column has: ClickHouse resolves aliases query-wide, and one
    # named like a column (sent, delivered, ...) would shadow it inside the other aggregates.
    return f"""
SELECT campaign, subject, period, n_sent AS sent, n_sent - n_pending AS final,
    n_delivered AS delivered, n_dropped AS dropped, n_clicked AS clicked,
    n_landings AS landings, n_converting AS converting, variants, first_hour, campaigns
FROM (
    SELECT
        {campaign} AS campaign,
        {column} AS subject,
        {_PERIOD} AS period,
        sum(sent) AS n_sent,
        sum(pending) AS n_pending,
        sum(delivered) AS n_delivered,
        sum(rejected) AS n_dropped,
        sum(clicked_messages) AS n_clicked,
        sum(landings) AS n_landings,
        sum(converting_messages) AS n_converting,
        arraySort(groupUniqArray(variant)) AS variants,
        min(send_hour) AS first_hour,
        uniqExact(funnel_hourly.campaign) AS campaigns
    FROM funnel_hourly FINAL
    WHERE account = {{a:String}} AND {_RANGE}
    GROUP BY campaign, subject, period
)
ORDER BY campaign, subject, period
"""


# Opt-outs as the attribution stage answered them to a message (message_responses), in the
# period of that message's send hour.
OPT_OUTS = f"""
SELECT f.campaign AS campaign, '' AS subject, {_PERIOD} AS period, sum(r.outs) AS opt_outs
FROM (
    SELECT message_id, sum(opt_outs) AS outs
    FROM message_responses FINAL
    WHERE account = {{a:String}} AND message_id != '' AND opt_outs > 0
    GROUP BY message_id
) AS r
INNER JOIN (
    SELECT message_id, campaign, toStartOfHour(sent_at) AS send_hour
    FROM funnel_rows FINAL
    WHERE account = {{a:String}} AND has_send
) AS f ON f.message_id = r.message_id
WHERE {_RANGE}
GROUP BY campaign, period
"""

# The failure causes of the recent period's undelivered messages, most frequent first.
FAILURE_CAUSES = f"""
SELECT campaign, failure_cause, count() AS messages
FROM (
    SELECT campaign, failure_cause, toStartOfHour(sent_at) AS send_hour
    FROM funnel_rows FINAL
    WHERE account = {{a:String}} AND has_send AND failure_cause != ''
)
WHERE {_RANGE} AND {_PERIOD} = 'recent'
GROUP BY campaign, failure_cause
ORDER BY campaign, messages DESC, failure_cause
"""

# The end of the data: the hour after the account's latest send hour.
LATEST_SEND_HOUR = """
SELECT max(send_hour) + toIntervalHour(1) AS as_of, count() AS cohorts
FROM funnel_hourly FINAL WHERE account = {a:String} AND sent > 0
"""
