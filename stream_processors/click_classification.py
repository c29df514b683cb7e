"""Which clicks a person made. Link-preview fetchers and URL scanners are recorded, flagged and
kept, but not counted as human clicks (DOMAIN.md, Clicks). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

# Substrings of user agents that are previews, scanners or scripts, not people. iMessage's
# preview fetcher announces itself as "facebookexternalhit … Twitterbot".
BOT_USER_AGENT_MARKERS = (
    "bot",
    "crawler",
    "spider",
    "preview",
    "facebookexternalhit",
    "whatsapp",
    "slack",
    "telegram",
    "skypeuripreview",
    "discord",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "okhttp",
    "headless",
    "scanner",
    "proofpoint",
    "mimecast",
    "barracuda",
    "urldefense",
    "safelinks",
    "google-read-aloud",
    "linkexpander",
)
# A click this soon after delivery is a preview fetched on arrival, not a person reading.
TOO_SOON_AFTER_DELIVERY = timedelta(seconds=2)


def request_flag(method: str, user_agent: str) -> str:
    """Why the request itself is not human ('' when it may be)."""
    if method.upper() == "HEAD":
        return "head_request"
    ua = user_agent.strip().lower()
    if not ua:
        return "no_user_agent"
    if any(marker in ua for marker in BOT_USER_AGENT_MARKERS):
        return "bot_user_agent"
    return ""


def non_human_reason(flag: str, clicked_at: datetime, delivered_at: datetime | None) -> str:
    """'' for a human click, else why not. Depends on the delivery time, so it is decided when
    the row is built (from the set of events), not when the click arrives."""
    if flag:
        return flag
    if (
        delivered_at is not None
        and timedelta(0) <= clicked_at - delivered_at < TOO_SOON_AFTER_DELIVERY
    ):
        return "too_soon_after_delivery"
    return ""
