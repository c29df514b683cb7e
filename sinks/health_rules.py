"""Campaign-health diagnostics: the seed playbooks' symptoms (DOMAIN.md, "Diagnostics"), each
checked on a campaign's recent period against its own baseline (the period before it) and
reported with its evidence, likely cause and what to do.

The figures come from ClickHouse (sinks/health_queries.py); what counts as a finding is pure
(`find`), so each rule is tested on figures alone. Every rule needs enough messages on each
side of its comparison (`Thresholds.min_sample`, clicks: `min_clicks`), so a small campaign
raises no alarm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from sinks import health_queries as q
from sinks.query_client import QueryClient


class Thresholds(BaseModel):
    """When a symptom is a finding. Rates are fractions (0.1 = 10 %)."""

    recent_hours: int = Field(24, ge=1, description="length of the recent period")
    baseline_hours: int = Field(7 * 24, ge=1, description="the baseline: the hours before it")
    min_sample: int = Field(
        200, ge=1, description="messages (sent, final or delivered) each side must have"
    )
    min_clicks: int = Field(100, ge=1, description="clicked messages each side must have")
    delivery_drop_points: float = Field(
        0.10, gt=0, description="delivery rate fall, in rate points, that is a finding"
    )
    dropped_factor: float = Field(
        3.0, gt=1, description="a segment's dropped rate against the campaign's baseline"
    )
    dropped_floor: float = Field(0.05, gt=0, description="and at least this dropped rate")
    sent_collapse_ratio: float = Field(
        0.5, gt=0, lt=1, description="sent per hour below this share of the baseline's"
    )
    ctr_collapse_ratio: float = Field(
        0.5, gt=0, lt=1, description="click-through rate below this share of the baseline's"
    )
    carrier_ctr_ratio: float = Field(
        0.25, gt=0, lt=1, description="a carrier's click-through below this share of the others'"
    )
    cvr_collapse_ratio: float = Field(
        0.25, gt=0, lt=1, description="conversion rate of clicks below this share of the baseline's"
    )
    cvr_floor: float = Field(
        0.005, gt=0, description="without a baseline: conversion rate of clicks below this"
    )
    optout_factor: float = Field(3.0, gt=1, description="opt-out rate against the baseline's")
    optout_floor: float = Field(0.01, gt=0, description="and at least this opt-out rate")


@dataclass(frozen=True)
class Finding:
    check: str
    campaign: str
    subject: str  # what it is about beyond the campaign ("carrier att", "segment x"), or ''
    evidence: str
    cause: str
    action: str


# check -> (likely cause, what to do); the causes are DOMAIN.md's
PLAYBOOK: dict[str, tuple[str, str]] = {
    "delivery_drop": (
        "invalid numbers, carrier filtering, or the sender blocked in a new region",
        "look at the failure causes by carrier and country (funnel_dropoff); check the "
        "sender's registration where it fails; clean the list of numbers that never deliver",
    ),
    "dropped_spike": (
        "bad numbers or formats in a list import",
        "check the import's numbers (E.164, country) and remove the invalid ones before the "
        "next send; suppress numbers that were rejected",
    ),
    "sent_collapse": (
        "a paused campaign, a shrunken segment or frequency caps",
        "check the campaign's schedule and segment size and whether a frequency cap started "
        "holding sends back",
    ),
    "ctr_collapse": (
        "a weaker call to action or lost personalisation in the new content",
        "compare the variants (variant_comparison) and restore the previous copy, or test it "
        "against the new one",
    ),
    "carrier_clicks": (
        "the carrier rewriting or blocking the link domain",
        "send a test message through that carrier and open the link; use a branded, "
        "registered link domain",
    ),
    "conversion_gap": (
        "a landing page that does not match the message, or a broken checkout",
        "open the landing page from the message on a phone and buy; compare landings with "
        "clicks to see where people drop",
    ),
    "optout_spike": (
        "sending too often, or messages of low value to the recipient",
        "lower the frequency for this audience and check what the recent messages offered",
    ),
}


Figures = Mapping[str, Any]  # one row of a health query
# what `find` reads per campaign: the campaign itself, its segments, its carriers (senders are
# judged across campaigns: "sender_all")
USED_SUBJECTS = ("", "segment", "carrier")
Key = tuple[str, str]  # (campaign, subject)


@dataclass
class Periods:
    """A query's rows by (campaign, subject) and period."""

    rows: dict[Key, dict[str, Figures]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[Figures]) -> Periods:
        out = cls()
        for r in rows:
            out.rows.setdefault((r["campaign"], r["subject"]), {})[r["period"]] = r
        return out

    def get(self, key: Key, period: str, name: str) -> float:
        return float(self.rows.get(key, {}).get(period, {}).get(name, 0) or 0)


def _rate(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def find(
    by_subject: Mapping[str, Iterable[Figures]],
    opt_outs: Iterable[Figures],
    causes: Iterable[Figures],
    t: Thresholds,
) -> list[Finding]:
    """Every finding in the figures: `by_subject` maps each of USED_SUBJECTS to its
    cohort_figures rows, and "sender_all" to the senders' rows across campaigns; `opt_outs`
    and `causes` are the OPT_OUTS and FAILURE_CAUSES rows."""
    found: list[Finding] = []
    campaign = Periods.of(by_subject[""])
    top_causes: dict[str, list[str]] = {}
    for r in causes:
        top_causes.setdefault(r["campaign"], []).append(f"{r['failure_cause']} {r['messages']:,}")

    def finding(check: str, key: Key, subject: str, evidence: str) -> None:
        cause, action = PLAYBOOK[check]
        found.append(Finding(check, key[0], subject, evidence, cause, action))

    def delivery_drop(figures: Periods, key: Key, subject: str, why: str) -> None:
        """Delivery rate of the messages with a final receipt, recent against baseline."""
        rf, bf = figures.get(key, "recent", "final"), figures.get(key, "baseline", "final")
        if rf < t.min_sample or bf < t.min_sample:
            return
        delivered = figures.get(key, "recent", "delivered")
        recent = _rate(delivered, rf)
        base = _rate(figures.get(key, "baseline", "delivered"), bf)
        if base - recent >= t.delivery_drop_points - 1e-9:  # a fall of exactly the threshold
            finding(
                "delivery_drop",
                key,
                subject,
                f"delivery {_pct(base)} -> {_pct(recent)} ({delivered:,.0f} of {rf:,.0f} final "
                f"receipts recently, {bf:,.0f} in the baseline){why}",
            )

    # a sender's own baseline, across its campaigns (when it sends more than one: else the
    # campaign's finding says it)
    senders = Periods.of(by_subject["sender_all"])
    for key, periods in senders.rows.items():
        if max(int(p.get("campaigns", 1)) for p in periods.values()) > 1:
            delivery_drop(senders, key, f"sender {key[1]}", "")

    for key in campaign.rows:

        def g(period: str, name: str, key: Key = key) -> float:
            return campaign.get(key, period, name)

        causes_seen = ", ".join(top_causes.get(key[0], [])[:3]) or "none recorded"
        delivery_drop(campaign, key, "", f"; failure causes: {causes_seen}")
        # volume per hour
        bs = g("baseline", "sent")
        if bs >= t.min_sample:
            per_hour_base = bs / t.baseline_hours
            per_hour = g("recent", "sent") / t.recent_hours
            if per_hour < t.sent_collapse_ratio * per_hour_base:
                finding(
                    "sent_collapse",
                    key,
                    "",
                    f"sent {per_hour:,.1f} per hour recently against {per_hour_base:,.1f} in "
                    f"the baseline ({g('recent', 'sent'):,.0f} vs {bs:,.0f} messages)",
                )
        # click-through of delivered messages
        rd, bd = g("recent", "delivered"), g("baseline", "delivered")
        if rd >= t.min_sample and bd >= t.min_sample:
            recent, base = _rate(g("recent", "clicked"), rd), _rate(g("baseline", "clicked"), bd)
            if recent < t.ctr_collapse_ratio * base:
                variants = campaign.rows[key]
                rv = ", ".join(variants.get("recent", {}).get("variants", []))
                bv = ", ".join(variants.get("baseline", {}).get("variants", []))
                change = f"; variants {bv} -> {rv}" if rv != bv else "; same variants"
                finding(
                    "ctr_collapse",
                    key,
                    "",
                    f"click-through {_pct(base)} -> {_pct(recent)} of delivered messages "
                    f"({rd:,.0f} delivered recently){change}",
                )
        # conversion of clicked messages
        rc, bc = g("recent", "clicked"), g("baseline", "clicked")
        if rc >= t.min_clicks:
            recent = _rate(g("recent", "converting"), rc)
            if bc >= t.min_clicks:
                base = _rate(g("baseline", "converting"), bc)
                low, against = recent < t.cvr_collapse_ratio * base, f"{_pct(base)} -> "
            else:
                low, against = recent < t.cvr_floor, "no baseline; "
            if low:
                landed = _rate(g("recent", "landings"), rc)
                finding(
                    "conversion_gap",
                    key,
                    "",
                    f"conversion of clicks {against}{_pct(recent)} "
                    f"({g('recent', 'converting'):,.0f} of {rc:,.0f} clicked messages); "
                    f"landings {_pct(landed)} of clicks",
                )

    # a segment dropped far more than the campaign did before (a list import)
    segments = Periods.of(by_subject["segment"])
    for (name, segment), periods in segments.rows.items():
        sent = segments.get((name, segment), "recent", "sent")
        if "recent" not in periods or sent < t.min_sample:
            continue
        base_sent = campaign.get((name, ""), "baseline", "sent")
        if base_sent < t.min_sample:
            continue
        rate = _rate(segments.get((name, segment), "recent", "dropped"), sent)
        base = _rate(campaign.get((name, ""), "baseline", "dropped"), base_sent)
        if rate >= t.dropped_floor and rate >= t.dropped_factor * base:
            new = "baseline" not in periods
            first = periods["recent"]["first_hour"]
            since = first.strftime("%Y-%m-%d %H:00") if isinstance(first, datetime) else first
            finding(
                "dropped_spike",
                (name, ""),
                f"segment {segment}",
                f"{_pct(rate)} dropped of {sent:,.0f} sent "
                f"({'new segment, ' if new else ''}first sent {since}) against "
                f"{_pct(base)} for the campaign in the baseline",
            )

    # one carrier's click-through far below the campaign's other carriers
    carriers = Periods.of(by_subject["carrier"])
    for name, carrier in carriers.rows:
        delivered = carriers.get((name, carrier), "recent", "delivered")
        others = campaign.get((name, ""), "recent", "delivered") - delivered
        if delivered < t.min_sample or others < t.min_sample:
            continue
        clicked = carriers.get((name, carrier), "recent", "clicked")
        rate = _rate(clicked, delivered)
        other_rate = _rate(campaign.get((name, ""), "recent", "clicked") - clicked, others)
        if rate < t.carrier_ctr_ratio * other_rate:
            finding(
                "carrier_clicks",
                (name, ""),
                f"carrier {carrier or '(unknown)'}",
                f"click-through {_pct(rate)} of {delivered:,.0f} delivered against "
                f"{_pct(other_rate)} on the campaign's other carriers",
            )

    # opt-outs per delivered message
    outs = Periods.of(opt_outs)
    for key in campaign.rows:
        rd, bd = (
            campaign.get(key, "recent", "delivered"),
            campaign.get(key, "baseline", "delivered"),
        )
        if rd < t.min_sample or bd < t.min_sample:
            continue
        recent = _rate(outs.get(key, "recent", "opt_outs"), rd)
        base = _rate(outs.get(key, "baseline", "opt_outs"), bd)
        if recent >= t.optout_floor and recent >= t.optout_factor * base:
            finding(
                "optout_spike",
                key,
                "",
                f"opt-outs {_pct(base)} -> {_pct(recent)} of delivered messages "
                f"({outs.get(key, 'recent', 'opt_outs'):,.0f} of {rd:,.0f} recently)",
            )
    return sorted(found, key=lambda f: (f.campaign, f.check, f.subject))


def diagnose(
    client: QueryClient, account: str, t: Thresholds, as_of: datetime | None = None
) -> tuple[datetime | None, list[Finding]]:
    """(end of the recent period, findings) for `account`; as_of None: the hour after its
    latest send hour (None and no findings when it has sent nothing)."""
    if as_of is None:
        latest = client.rows(q.LATEST_SEND_HOUR, {"a": account})
        if not latest or not latest[0]["cohorts"]:
            return None, []
        end = latest[0]["as_of"]  # a datetime read directly, a string through the sink
        as_of = end if isinstance(end, datetime) else datetime.fromisoformat(str(end))
        if as_of.tzinfo is None:  # the column is DateTime('UTC')
            as_of = as_of.replace(tzinfo=UTC)
    params = {
        "a": account,
        "as_of": as_of.strftime("%Y-%m-%d %H:%M:%S"),
        "recent": t.recent_hours,
        "baseline": t.baseline_hours,
    }
    by_subject = {s: client.rows(q.cohort_figures(s), params) for s in USED_SUBJECTS}
    by_subject["sender_all"] = client.rows(
        q.cohort_figures("sender", across_campaigns=True), params
    )
    opt_outs = client.rows(q.OPT_OUTS, params)
    causes = client.rows(q.FAILURE_CAUSES, params)
    return as_of, find(by_subject, opt_outs, causes, t)
