"""The click redirector (the tracking domain): `GET /<token>` → 302 to the link's destination
with its query intact and a click id appended, the click recorded on Kafka.

It answers a person, so it never waits on Kafka per request: the click is handed to librdkafka
and the redirect goes out at once. What a crash can lose is what librdkafka holds unacknowledged
at that moment: clicks of the last `linger.ms` (2 ms) plus the broker's acknowledgement time in
normal operation — at 1,000 clicks/s a handful — and, while the broker is unreachable, up to
the producer's queue (QUEUE_LIMIT clicks). `smsfunnel_redirector_clicks_buffered` shows that
figure live; `smsfunnel_redirector_clicks_lost_total` counts clicks Kafka finally refused.

Unknown, tampered, foreign (signed for another account) or expired tokens get 404, never a
redirect. A bare ASGI app rather than FastAPI: this is the one hot path of the edge.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import hmac
import ipaddress
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from producers.acked_producer import BackgroundProducer
from producers.compacted_table import CompactedTable, link_registry
from producers.redirector_metrics import CLICKS, CLICKS_BUFFERED, CLICKS_LOST, LINKS_KNOWN
from producers.tracking_links import (
    InvalidToken,
    append_click_id,
    new_click_id,
    parse_token,
)
from schemas.links import LinkRegistration
from schemas.topics import CLICKS as CLICKS_TOPIC
from smsfunnel.kafka_config import durable_producer_config
from smsfunnel.settings import Settings, get_settings

log = logging.getLogger(__name__)
QUEUE_LIMIT = 100_000
_NOT_FOUND = b"unknown or expired link\n"
_REDIRECTED_COUNT = CLICKS.labels("redirected")
_NOT_FOUND_COUNT = CLICKS.labels("not_found")


def click_record(
    *,
    click_id: str,
    account: str,
    occurred_at: datetime,
    message_id: str,
    link_id: str,
    method: str,
    user_agent: str,
    ip_hash: str,
) -> bytes:
    """The ClickEvent's wire form, written directly: this is the edge's one hot path, and
    building then dumping the pydantic model costs more than the rest of a click. Every field is
    already valid here (the token was verified); tests/unit/test_redirector_record.py checks that
    the record parses as a ClickEvent with these values."""
    return orjson.dumps(
        {
            "event_id": click_id,
            "account": account,
            "occurred_at": occurred_at.isoformat(),
            "message_id": message_id,
            "event_type": "click",
            "click_id": click_id,
            "link_id": link_id,
            "method": method,
            "user_agent": user_agent,
            "ip_hash": ip_hash,
        }
    )


@functools.lru_cache(maxsize=65_536)
def network_hash(client_ip: str, key: bytes) -> str:
    """Keyed hash of the client's /24 (IPv4) or /48 (IPv6): enough to tell scanners' networks
    apart, not enough to name a person."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return hmac.new(key, str(network).encode(), hashlib.sha256).hexdigest()[:16]


class Redirector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.link_key = settings.link_signing_key.get_secret_value().encode()
        self.ip_key = settings.phone_hash_key.get_secret_value().encode()
        self.registry: CompactedTable[LinkRegistration] | None = None
        self.producer: BackgroundProducer | None = None

    def start(self) -> None:
        bootstrap = self.settings.bootstrap_servers()
        self.registry = link_registry(bootstrap)
        self.registry.start()
        self.producer = BackgroundProducer(
            durable_producer_config(
                bootstrap,
                **{
                    # librdkafka retries a click for a minute before it counts as lost
                    "message.timeout.ms": 60_000,
                    "queue.buffering.max.messages": QUEUE_LIMIT,
                    "linger.ms": self.settings.redirector_linger_ms,
                    # reports only for failures: a Python callback per delivered click would
                    # cost the event loop the GIL thousands of times a second
                    "delivery.report.only.error": True,
                },
            )
        )
        # Everything alive now (modules, the link registry) lives as long as the process: move
        # it out of the collector's reach, or every full collection walks it while clicks wait
        # (measured: a third more redirects per second; the Instagram gc.freeze technique).
        gc.collect()
        gc.freeze()

    def stop(self) -> None:
        if self.producer is not None:
            self.producer.close()
        if self.registry is not None:
            self.registry.close()

    @staticmethod
    def _on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            CLICKS_LOST.inc()

    def click(self, token: str, method: str, user_agent: bytes, client: str) -> str | None:
        """The redirect location, or None for a token that must get a 404."""
        assert self.registry is not None and self.producer is not None
        try:
            parsed = parse_token(token)
            link = self.registry.get(parsed.claims.link_id)
            if link is None:
                return None
            claims = parsed.verified(self.link_key, link.account)
        except InvalidToken:
            return None
        now = datetime.now(UTC)
        if link.expired(now):
            return None
        click_id = new_click_id(token)
        record = click_record(
            click_id=click_id,
            account=link.account,
            occurred_at=now,
            message_id=claims.message_id,
            link_id=claims.link_id,
            method="HEAD" if method == "HEAD" else "GET",
            user_agent=user_agent.decode("latin-1")[:1000],
            ip_hash=network_hash(client, self.ip_key),
        )
        if not self.producer.produce_nowait(
            CLICKS_TOPIC.name, claims.message_id.encode(), record, self._on_delivery
        ):
            CLICKS_LOST.inc()  # the person still gets their page
        return append_click_id(link.destination_url, click_id)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/metrics":
            assert self.producer is not None and self.registry is not None
            CLICKS_BUFFERED.set(self.producer.queued())
            LINKS_KNOWN.set(len(self.registry))
            await _respond(send, 200, generate_latest(), CONTENT_TYPE_LATEST.encode())
            return
        if path == "/health":
            await _respond(send, 200, b"ok\n")
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"GET or HEAD\n")
            return
        user_agent = next((v for k, v in scope["headers"] if k == b"user-agent"), b"")
        client = (scope.get("client") or ("", 0))[0]
        location = self.click(path.lstrip("/"), method, user_agent, client)
        if location is None:
            _NOT_FOUND_COUNT.inc()
            await _respond(send, 404, _NOT_FOUND)
            return
        _REDIRECTED_COUNT.inc()
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [
                    (b"location", location.encode()),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.start()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(
    send: Any, status: int, body: bytes, content_type: bytes = b"text/plain"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_redirector() -> Redirector:
    """uvicorn factory (each worker process builds its own producer and registry)."""
    return Redirector(get_settings())
