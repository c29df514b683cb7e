"""The ingest edge over real HTTP against the real broker: signed provider callbacks accepted
and their one-byte-changed twins refused, accepted events on the broker, phone numbers hashed
before they leave the process, the redirector's 302/404s and the click ids that tie landings
and postbacks to their message. Expected values are computed here (uuid5 of the natural key,
HMACs by hand, Twilio's own compute_signature), not by the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from twilio.request_validator import RequestValidator

from producers.tracking_links import new_click_id, sign_token
from schemas.topics import (
    CLICKS,
    CONVERSIONS,
    DELIVERY_RECEIPTS,
    INBOUND,
    LANDINGS,
    PROVIDER_RECEIPTS,
    SENDS,
    SUBSCRIBER_CONVERSIONS,
    UNATTRIBUTABLE_CONVERSIONS,
)

from .conftest import (
    LINK_KEY,
    MODELS,
    PHONE_KEY,
    Edge,
    Pipeline,
    get_until_known,
    human_click,
    metric_value,
    raw_topic_bytes,
    read_topic,
    register_link,
    shopify_signature,
)

pytestmark = pytest.mark.e2e
NAMESPACE = uuid.UUID("5a3e1f0c-6d1b-4c55-9a53-9b8f0a7e2c11")  # producers/event_ids.py, fixed


def expected_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(parts)))


def with_id(event_id: str):  # type: ignore[no-untyped-def]
    return lambda records: any(r.get("event_id") == event_id for r in records)


def one(records: list[dict], event_id: str) -> dict:  # type: ignore[type-arg]
    return next(r for r in records if r.get("event_id") == event_id)


def phone_hash(e164: str) -> str:
    return hmac.new(PHONE_KEY.encode(), e164.encode(), hashlib.sha256).hexdigest()


def twilio_post(edge: Edge, path: str, params: dict[str, str], tamper: bool = False):  # type: ignore[no-untyped-def]
    url = edge.url + path
    signature = RequestValidator("acme-twilio-token").compute_signature(url, params)
    if tamper:  # the same signature over parameters with one byte changed
        params = {**params, "MessageSid": params["MessageSid"][:-1] + "X"}
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature})


def test_twilio_status_callback_signed_by_twilio_is_on_the_broker(edge: Edge) -> None:
    sid = f"SM{uuid.uuid4().hex}"
    params = {
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "AccountSid": "AC1",
        "ApiVersion": "2010-04-01",
    }
    ok = twilio_post(edge, "/webhooks/acme/twilio/status?message_id=m-twilio-1", params)
    assert ok.status_code == 204, ok.text
    event_id = expected_id("acme", "twilio-status", sid, "delivered")
    record = one(read_topic(edge.bootstrap, DELIVERY_RECEIPTS.name, with_id(event_id)), event_id)
    assert (record["message_id"], record["status"], record["_key"]) == (
        "m-twilio-1",
        "delivered",
        b"m-twilio-1",
    )
    bad = twilio_post(
        edge, "/webhooks/acme/twilio/status?message_id=m-twilio-1", params, tamper=True
    )
    assert bad.status_code == 401 and "X-Twilio-Signature" in bad.text


def test_twilio_callback_without_our_id_goes_to_the_resolver_topic(edge: Edge) -> None:
    sid = f"SM{uuid.uuid4().hex}"
    resp = twilio_post(
        edge, "/webhooks/acme/twilio/status", {"MessageSid": sid, "MessageStatus": "sent"}
    )
    assert resp.status_code == 204, resp.text
    event_id = expected_id("acme", "twilio-status", sid, "sent")
    record = one(read_topic(edge.bootstrap, PROVIDER_RECEIPTS.name, with_id(event_id)), event_id)
    assert (record["provider_message_id"], record["status"]) == (sid, "submitted")


def test_twilio_inbound_stop_is_an_opt_out_with_the_number_hashed(edge: Edge) -> None:
    sid = f"SM{uuid.uuid4().hex}"
    params = {"MessageSid": sid, "From": "+14155550123", "To": "+18005550000", "Body": "Stop"}
    resp = twilio_post(edge, "/webhooks/acme/twilio/inbound", params)
    assert resp.status_code == 200 and "<Response>" in resp.text
    event_id = expected_id("acme", "twilio-inbound", sid)
    record = one(read_topic(edge.bootstrap, INBOUND.name, with_id(event_id)), event_id)
    assert (record["kind"], record["recipient_hash"]) == ("opt_out", phone_hash("+14155550123"))
    assert b"4155550123" not in raw_topic_bytes(edge.bootstrap, INBOUND.name)


def test_send_api_hashes_numbers_before_they_leave(edge: Edge) -> None:
    message_id = f"m-{uuid.uuid4()}"
    send = {
        "message_id": message_id,
        "occurred_at": "2026-11-20T12:00:00Z",
        "campaign": "bf",
        "sender": "12345",
        "to": "+44 7700 900123",
        "cost": "0.0075",
        "currency": "USD",
        "provider_message_ids": ["0A1B"],
    }
    headers = {"Authorization": "Bearer acme-api-key"}
    resp = httpx.post(f"{edge.url}/v1/accounts/acme/sends", json={"sends": [send]}, headers=headers)
    assert resp.status_code == 202 and resp.json() == {"accepted": 1}
    event_id = expected_id("acme", "send", message_id)
    record = one(read_topic(edge.bootstrap, SENDS.name, with_id(event_id)), event_id)
    assert (record["recipient_hash"], record["country"], record["cost"]) == (
        phone_hash("+447700900123"),
        "GB",
        "0.0075",
    )
    assert b"7700900123" not in raw_topic_bytes(edge.bootstrap, SENDS.name)
    # another account's key, or none, is refused before anything is produced
    for auth in ({"Authorization": "Bearer globex-api-key"}, {}):
        refused = httpx.post(
            f"{edge.url}/v1/accounts/acme/sends", json={"sends": [send]}, headers=auth
        )
        assert refused.status_code == 401


@pytest.mark.parametrize(
    ("to", "country", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("07700 900123", "GB", "+447700900123"),
        ("+1 415 555 2671", "GB", "+14155552671"),  # international form: the country is moot
    ],
)
def test_send_api_reads_national_numbers_in_the_country_given(
    edge: Edge, to: str, country: str, e164: str
) -> None:
    message_id = f"m-{uuid.uuid4()}"
    send = {
        "message_id": message_id,
        "occurred_at": "2026-11-20T12:00:00Z",
        "campaign": "bf",
        "sender": "12345",
        "to": to,
        "country": country,
    }
    headers = {"Authorization": "Bearer acme-api-key"}
    resp = httpx.post(f"{edge.url}/v1/accounts/acme/sends", json={"sends": [send]}, headers=headers)
    assert resp.status_code == 202, resp.text
    event_id = expected_id("acme", "send", message_id)
    record = one(read_topic(edge.bootstrap, SENDS.name, with_id(event_id)), event_id)
    assert record["recipient_hash"] == phone_hash(e164)
    assert record["country"] == ("US" if e164.startswith("+1") else "GB")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"to": "not a number"}, "phone"),
        ({"to": "(415) 555-2671"}, "the phone number has no country code: write it in"),
        ({"to": "(415) 555-2671", "country": "ZZ"}, "'ZZ' is no country's code"),
        ({"to": "555-26", "country": "US"}, "wrong number of digits for a number of US"),
        ({"to": None, "recipient_hash": "+14155550100", "country": "US"}, "raw phone numbers"),
        ({"occurred_at": "2026-11-20T12:00:00"}, "occurred_at"),
        ({"cost": "-1"}, "cost"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_sends_get_a_422_naming_the_problem(edge: Edge, change: dict, named: str) -> None:  # type: ignore[type-arg]
    send = {
        "message_id": "m-bad",
        "occurred_at": "2026-11-20T12:00:00Z",
        "campaign": "c",
        "sender": "1",
        "to": "+14155550100",
        **change,
    }
    send = {k: v for k, v in send.items() if v is not None}
    resp = httpx.post(
        f"{edge.url}/v1/accounts/acme/sends",
        json={"sends": [send]},
        headers={"Authorization": "Bearer acme-api-key"},
    )
    assert resp.status_code == 422, resp.text
    assert named in resp.text


def test_click_redirect_landing_and_postback_tie_back_to_the_message(
    edge: Edge, redirector_url: str
) -> None:
    destination = "https://shop.example/sale?utm_source=sms&utm_campaign=black%20friday"
    link_id = register_link(edge, destination)
    message_id = str(uuid.uuid4())
    token = sign_token(LINK_KEY.encode(), "acme", link_id, message_id)
    resp = get_until_known(f"{redirector_url}/{token}")
    assert resp.status_code == 302
    location = resp.headers["location"]
    assert location.startswith(destination + "&smsclid=")  # UTM parameters untouched
    click_id = parse_qs(urlsplit(location).query)["smsclid"][0]

    clicks = read_topic(edge.bootstrap, CLICKS.name, with_id(click_id))
    click = one(clicks, click_id)
    assert (click["message_id"], click["link_id"], click["method"], click["_key"]) == (
        message_id,
        link_id,
        "GET",
        message_id.encode(),
    )
    assert len(click["ip_hash"]) == 16 and "127.0.0" not in click["ip_hash"]

    head = httpx.head(
        f"{redirector_url}/{token}", headers={"User-Agent": "facebookexternalhit/1.1"}
    )
    assert head.status_code == 302
    head_click = parse_qs(urlsplit(head.headers["location"]).query)["smsclid"][0]
    record = one(read_topic(edge.bootstrap, CLICKS.name, with_id(head_click)), head_click)
    assert (record["method"], record["user_agent"]) == ("HEAD", "facebookexternalhit/1.1")

    landing = httpx.get(f"{edge.url}/v1/accounts/acme/beacon/landing", params={"smsclid": click_id})
    assert landing.status_code == 204
    landing_id = expected_id("acme", "landing", click_id)
    assert (
        one(read_topic(edge.bootstrap, LANDINGS.name, with_id(landing_id)), landing_id)[
            "message_id"
        ]
        == message_id
    )

    postback = httpx.get(
        f"{edge.url}/postbacks/acme/conversion",
        params={
            "click_id": click_id,
            "order_id": "o-77",
            "amount": "49.90",
            "currency": "USD",
            "secret": "acme-postback-secret",
        },
    )
    assert postback.status_code == 204, postback.text
    conversion_id = expected_id("acme", "postback", click_id, "o-77", "purchase")
    record = one(
        read_topic(edge.bootstrap, CONVERSIONS.name, with_id(conversion_id)), conversion_id
    )
    assert (record["message_id"], record["amount"], record["click_id"]) == (
        message_id,
        "49.90",
        click_id,
    )

    tune = httpx.get(
        f"{edge.url}/postbacks/acme/tune",
        params={
            "transaction_id": click_id,
            "amount": "3",
            "adv_sub": "o-78",
            "secret": "acme-postback-secret",
        },
    )
    assert (tune.status_code, tune.text) == (200, "success=true;")


def test_tampered_foreign_unknown_and_expired_tokens_get_404(
    edge: Edge, redirector_url: str
) -> None:
    link_id = register_link(edge, "https://shop.example/a")
    good = sign_token(LINK_KEY.encode(), "acme", link_id, "m-404")
    assert get_until_known(f"{redirector_url}/{good}").status_code == 302
    raw = bytearray(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
    raw[4] ^= 0x01  # one byte of the link id or message id
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    foreign = sign_token(LINK_KEY.encode(), "globex", link_id, "m-404")
    other_key = sign_token(b"not-our-key", "acme", link_id, "m-404")
    unknown = sign_token(LINK_KEY.encode(), "acme", "nolink", "m-404")
    for token in (tampered, foreign, other_key, unknown, "favicon.ico", ""):
        resp = httpx.get(f"{redirector_url}/{token}", follow_redirects=False)
        assert resp.status_code == 404, token
        assert "location" not in resp.headers

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired_link = register_link(edge, "https://shop.example/old", expires_at=past)
    alive = register_link(edge, "https://shop.example/new")  # registered after: a marker
    marker = sign_token(LINK_KEY.encode(), "acme", alive, "m-1")
    assert get_until_known(f"{redirector_url}/{marker}").status_code == 302
    expired = sign_token(LINK_KEY.encode(), "acme", expired_link, "m-1")
    assert httpx.get(f"{redirector_url}/{expired}").status_code == 404


def test_click_lands_on_the_partition_of_its_message(edge: Edge, redirector_url: str) -> None:
    """The join holds a message's state on the partition its send was keyed to, by the Python
    producers' murmur2 partitioner; a click from either redirector must land there too. The
    expected partition comes from librdkafka itself: the same keys produced to a probe topic
    of the same partition count."""
    link_id = register_link(edge, "https://shop.example/partitions")
    message_ids = [str(uuid.uuid4()) for _ in range(12)]
    expected = probe_partitions(edge.bootstrap, message_ids, edge.settings.partitions)
    assert len(set(expected.values())) > 1  # keys spread: a fixed partition would not pass
    click_ids = {}
    for message_id in message_ids:
        token = sign_token(LINK_KEY.encode(), "acme", link_id, message_id)
        location = get_until_known(f"{redirector_url}/{token}").headers["location"]
        click_ids[parse_qs(urlsplit(location).query)["smsclid"][0]] = message_id
    records = read_topic(
        edge.bootstrap, CLICKS.name, lambda rs: click_ids.keys() <= {r["event_id"] for r in rs}
    )
    landed = {r["message_id"]: r["_partition"] for r in records if r["event_id"] in click_ids}
    assert landed == expected


def probe_partitions(bootstrap: str, keys: list[str], partitions: int) -> dict[str, int]:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from smsfunnel.kafka_config import admin_futures_without_gc, durable_producer_config

    topic = f"e2e.partition-probe.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    with admin_futures_without_gc():
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    producer = Producer(durable_producer_config(bootstrap))
    placed: dict[str, int] = {}

    def delivered(err, msg) -> None:  # type: ignore[no-untyped-def]
        assert err is None, err
        placed[msg.key().decode()] = msg.partition()

    deadline = time.monotonic() + 30
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"probe", on_delivery=delivered)
    while len(placed) < len(keys):
        assert time.monotonic() < deadline, f"probe not delivered: {placed}"
        producer.poll(0.2)
    return placed


def test_shopify_orders_paid_verified_by_hmac(edge: Edge) -> None:
    link_id = register_link(edge, "https://shop.example/p")
    message_id = f"m-{uuid.uuid4()}"
    token = sign_token(LINK_KEY.encode(), "acme", link_id, message_id)
    resp = get_until_known(f"{edge.redirector_url}/{token}")
    click_id = parse_qs(urlsplit(resp.headers["location"]).query)["smsclid"][0]
    order_id = int(time.time_ns() % 10**15)
    body = orjson.dumps(
        {
            "id": order_id,
            "total_price": "120.50",
            "currency": "EUR",
            "landing_site": f"/p?utm_source=sms&smsclid={click_id}",
            "processed_at": "2026-11-20T10:00:00+01:00",
        }
    )
    event_header = f"shopify-evt-{order_id}"

    def post(payload: bytes, signature: str):  # type: ignore[no-untyped-def]
        return httpx.post(
            f"{edge.url}/webhooks/acme/shopify/orders-paid",
            content=payload,
            headers={
                "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Event-Id": event_header,
                "Content-Type": "application/json",
            },
        )

    digest = shopify_signature(body)
    assert post(body, digest).status_code == 200
    event_id = expected_id("acme", "shopify", event_header)
    record = one(read_topic(edge.bootstrap, CONVERSIONS.name, with_id(event_id)), event_id)
    assert (record["message_id"], record["order_id"], record["amount"], record["currency"]) == (
        message_id,
        str(order_id),
        "120.50",
        "EUR",
    )
    assert post(body.replace(b"120.50", b"120.51"), digest).status_code == 401
    assert post(body, digest.lower()).status_code == 401

    phone_only = orjson.dumps(
        {
            "id": order_id + 1,
            "total_price": "9.00",
            "currency": "USD",
            "customer": {"phone": "+14155550188"},
        }
    )
    sig = shopify_signature(phone_only)
    assert post(phone_only, sig).status_code == 200
    record = one(
        read_topic(edge.bootstrap, SUBSCRIBER_CONVERSIONS.name, with_id(event_id)), event_id
    )
    assert record["recipient_hash"] == phone_hash("+14155550188")

    nothing = orjson.dumps({"id": order_id + 2, "total_price": "1.00", "currency": "USD"})
    sig = shopify_signature(nothing)
    assert post(nothing, sig).status_code == 200
    kept = read_topic(
        edge.bootstrap,
        UNATTRIBUTABLE_CONVERSIONS.name,
        lambda rs: any(r.get("order_id") == str(order_id + 2) for r in rs),
    )
    (record,) = [r for r in kept if r["order_id"] == str(order_id + 2)]
    assert record["source"] == "shopify" and record["reason"].startswith("no smsclid")


def test_gateway_receipts(edge: Edge) -> None:
    token = {"token": "acme-hook-token"}
    vonage = httpx.get(
        f"{edge.url}/webhooks/acme/vonage/receipt",
        params={"messageId": "0B00000099", "status": "delivered", "client-ref": "m-vg", **token},
    )
    assert vonage.status_code == 204, vonage.text
    vg_id = expected_id("acme", "vonage-dlr", "0B00000099", "delivered")
    assert (
        one(read_topic(edge.bootstrap, DELIVERY_RECEIPTS.name, with_id(vg_id)), vg_id)["message_id"]
        == "m-vg"
    )

    jasmin = httpx.post(
        f"{edge.url}/webhooks/acme/jasmin/dlr",
        params=token,
        data={"id": "jas-1", "message_status": "UNDELIV", "level": "2", "err": "001"},
    )
    assert (jasmin.status_code, jasmin.text) == (200, "ACK/Jasmin")
    js_id = expected_id("acme", "jasmin-dlr", "jas-1", "UNDELIV", "2")
    assert (
        one(read_topic(edge.bootstrap, PROVIDER_RECEIPTS.name, with_id(js_id)), js_id)["status"]
        == "undelivered"
    )

    kannel = httpx.get(
        f"{edge.url}/webhooks/acme/kannel/dlr",
        params={"message_id": "m-kn", "type": "2", "smsc_id": "77", **token},
    )
    assert kannel.status_code == 204
    kn_id = expected_id("acme", "kannel-dlr", "m-kn", "77", "2", "")
    assert (
        one(read_topic(edge.bootstrap, DELIVERY_RECEIPTS.name, with_id(kn_id)), kn_id)["status"]
        == "undelivered"
    )

    wrong = httpx.get(
        f"{edge.url}/webhooks/acme/kannel/dlr",
        params={"message_id": "m", "type": "2", "token": "x"},
    )
    assert wrong.status_code == 401 and "webhook token" in wrong.text
    missing = httpx.get(
        f"{edge.url}/webhooks/acme/vonage/receipt", params={"messageId": "1", **token}
    )
    assert missing.status_code == 422 and "status" in missing.text


def test_generic_receipt_takes_provider_words_and_names_its_vocabulary_in_a_422(
    edge: Edge,
) -> None:
    url = f"{edge.url}/webhooks/acme/receipts"
    auth = {"Authorization": "Bearer acme-api-key"}
    at = "2026-11-20T12:00:00+00:00"
    sent = httpx.post(
        url, headers=auth, json={"status": "sent", "message_id": "m-gen", "occurred_at": at}
    )
    assert sent.status_code == 204, sent.text
    gen_id = expected_id("acme", "receipt:generic", "m-gen", "sent", at)
    found = one(read_topic(edge.bootstrap, DELIVERY_RECEIPTS.name, with_id(gen_id)), gen_id)
    assert found["status"] == "submitted"
    bad = httpx.post(
        url, headers=auth, json={"status": "bogus", "message_id": "m-gen", "occurred_at": at}
    )
    assert bad.status_code == 422 and "one of:" in bad.text and "enroute" in bad.text, bad.text


def test_every_postback_parameter_is_in_the_openapi_document(edge: Edge) -> None:
    """from_generic_postback reads these (occurred_at was read but not documented)."""
    doc = httpx.get(f"{edge.url}/openapi.json").json()
    for method in ("get", "post"):
        op = doc["paths"]["/postbacks/{account}/conversion"][method]
        names = {p["name"] for p in op["parameters"]}
        want = {"click_id", "order_id", "amount", "currency", "event", "occurred_at", "secret"}
        assert want <= names, (method, want - names)


def test_unknown_account_is_refused_by_name(edge: Edge) -> None:
    resp = httpx.get(
        f"{edge.url}/postbacks/initech/everflow", params={"transaction_id": "x", "secret": "s"}
    )
    assert resp.status_code == 401 and "initech" in resp.text


def test_metrics_count_requests(edge: Edge, redirector_url: str) -> None:
    httpx.post(  # a request of its own: the test must not depend on which ran before it
        f"{edge.url}/v1/accounts/acme/sends",
        json={"sends": []},
        headers={"Authorization": "Bearer acme-api-key"},
    )
    text = httpx.get(f"{edge.url}/metrics/").text
    assert 'smsfunnel_ingest_requests_total{route="/v1/accounts/{account}/sends"' in text
    link_id = register_link(edge, "https://shop.example/counted")
    token = sign_token(LINK_KEY.encode(), "acme", link_id, "m-counted")
    assert get_until_known(f"{redirector_url}/{token}").status_code == 302

    def redirected() -> float:
        return metric_value(
            int(urlsplit(redirector_url).port or 0),
            "smsfunnel_redirector_clicks_total",
            'outcome="redirected"',
        )

    before = redirected()
    for _ in range(3):
        assert httpx.get(f"{redirector_url}/{token}").status_code == 302
    assert redirected() == before + 3


def test_unattributable_order_is_kept_once_in_clickhouse(edge: Edge, pipeline: Pipeline) -> None:
    """Never dropped silently: an order with nothing tying it to an SMS reaches the sink's
    unattributable_conversions table with its reason, once, however often Shopify retries it."""
    order_id = int(time.time_ns() % 10**15)
    body = orjson.dumps({"id": order_id, "total_price": "5.00", "currency": "USD"})
    signature = shopify_signature(body)
    headers = {
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Event-Id": f"evt-orphan-{order_id}",
        "Content-Type": "application/json",
    }
    for _ in range(2):  # the original and Shopify's retry
        resp = httpx.post(
            f"{edge.url}/webhooks/acme/shopify/orders-paid", content=body, headers=headers
        )
        assert resp.status_code == 200
    pipeline.drain()
    rows = pipeline.query.rows(
        "SELECT account, source, reason, amount FROM unattributable_conversions FINAL "
        "WHERE order_id = {o:String}",
        {"o": str(order_id)},
    )
    assert [(r["account"], r["source"], r["reason"], Decimal(str(r["amount"]))) for r in rows] == [
        ("acme", "shopify", "no smsclid that verifies and no usable phone number", Decimal("5"))
    ]


def test_postback_with_a_click_id_never_issued_is_kept_not_refused(
    edge: Edge, pipeline: Pipeline
) -> None:
    """A well-formed, authenticated postback whose click id acme never issued (this one is
    globex's) is answered 202 (so the network stops retrying), kept once however often it is
    retried, and counted; a wrong secret stays 401. (A scoped query may read the table:
    test_scoped_queries.)"""
    order = f"o-foreign-{time.time_ns()}"
    foreign = new_click_id(sign_token(LINK_KEY.encode(), "globex", "lnk-x", "m-globex"))
    params = {
        "click_id": foreign,
        "order_id": order,
        "amount": "12.34",
        "currency": "EUR",
        "secret": "acme-postback-secret",
    }
    url = f"{edge.url}/postbacks/acme/conversion"
    port = edge.settings.ingest_http_port
    before = metric_value(
        port, "smsfunnel_ingest_unattributable_conversions_total", 'source="postback"'
    )
    for _ in range(3):  # the network retries
        resp = httpx.get(url, params=params)
        assert resp.status_code == 202, resp.text
    assert httpx.get(url, params=params | {"secret": "wrong"}).status_code == 401
    after = metric_value(
        port, "smsfunnel_ingest_unattributable_conversions_total", 'source="postback"'
    )
    assert after == before + 3
    pipeline.drain()
    sql = (
        "SELECT account, source, click_id, amount, currency, reason, payload "
        "FROM unattributable_conversions FINAL WHERE order_id = {o:String}"
    )
    rows = pipeline.query.rows(sql, {"o": order})
    assert len(rows) == 1, rows
    (row,) = rows
    assert (row["account"], row["source"], row["click_id"], row["currency"]) == (
        "acme",
        "postback",
        foreign,
        "EUR",
    )
    assert Decimal(str(row["amount"])) == Decimal("12.34")
    assert row["reason"].startswith("click id not recognised")
    assert "acme-postback-secret" not in row["payload"] and order in row["payload"]


def test_refunds_count_once_and_attributed_revenue_is_net_of_them(
    edge: Edge, pipeline: Pipeline
) -> None:
    """Through the receivers: a send, a human click through the redirector, an 80.00 purchase;
    then a refund of 30.00 sent twice (the network retried), a payout corrected up by 5.00, and
    a refund of an order nobody converted. ClickHouse keeps each adjustment once, the attributed
    revenue is 80 - 30 + 5 = 55.00 in every model (one touch), and so is the funnel's (the hourly
    aggregate, recomputed when the adjustments came after the row, and daily_trends); the
    unknown order's refund is listed as unattributable; bad adjustments are refused, named."""
    campaign = f"refunds-{time.time_ns()}"
    message_id = str(uuid.uuid4())
    send = {
        "message_id": message_id,
        "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "campaign": campaign,
        "sender": "12345",
        "to": "+14155550199",
    }
    resp = httpx.post(
        f"{edge.url}/v1/accounts/acme/sends",
        json={"sends": [send]},
        headers={"Authorization": "Bearer acme-api-key"},
    )
    assert resp.status_code == 202, resp.text
    click_id = human_click(edge, register_link(edge, "https://shop.example/"), message_id)
    order = f"o-refund-{time.time_ns()}"
    secret = {"secret": "acme-postback-secret"}
    purchase = {"click_id": click_id, "order_id": order, "amount": "80.00", "currency": "USD"}
    assert (
        httpx.get(f"{edge.url}/postbacks/acme/conversion", params=purchase | secret).status_code
        == 204
    )

    def funnel_revenue() -> tuple[Decimal, Decimal]:
        """(the hourly aggregate's, daily_trends') USD revenue of the campaign."""
        p = {"c": campaign}
        (hourly,) = pipeline.query.rows(
            "SELECT toString(sumMap(revenue)['USD']) AS r FROM funnel_hourly FINAL "
            "WHERE account = 'acme' AND campaign = {c:String}",
            p,
        )
        (daily,) = pipeline.query.rows(
            "SELECT toString(sumMap(revenue)['USD']) AS r FROM daily_trends "
            "WHERE account = 'acme' AND campaign = {c:String}",
            p,
        )
        return Decimal(hourly["r"]), Decimal(daily["r"])

    pipeline.drain()  # the row is written before any adjustment: their batch must recompute it
    assert funnel_revenue() == (Decimal("80"), Decimal("80"))
    (row,) = pipeline.query.rows(
        "SELECT order_ids FROM funnel_rows FINAL "
        "WHERE account = 'acme' AND message_id = {m:String}",
        {"m": message_id},
    )
    assert row["order_ids"] == [order]

    url = f"{edge.url}/postbacks/acme/adjustment"
    refunds = lambda: metric_value(  # noqa: E731
        edge.settings.ingest_http_port, "smsfunnel_ingest_adjustments_total", 'kind="refund"'
    )
    before = refunds()
    refund = {
        "order_id": order,
        "adjustment_id": f"rf-{order}",
        "amount": "30.00",
        "currency": "USD",
    }
    for _ in range(2):  # sent twice
        assert httpx.get(url, params=refund | secret).status_code == 204
    correction = {
        "order_id": order,
        "adjustment_id": f"corr-{order}",
        "amount": "5.00",
        "currency": "USD",
        "kind": "correction",
    }
    assert httpx.post(url, data=correction | secret).status_code == 204  # a form POST
    nobody = f"o-nobody-{time.time_ns()}"
    stray = {
        "order_id": nobody,
        "adjustment_id": f"rf-{nobody}",
        "amount": "-10",
        "currency": "USD",
    }
    assert httpx.get(url, params=stray | secret).status_code == 204
    assert refunds() == before + 3
    zero = httpx.get(url, params=refund | secret | {"amount": "0"})
    assert zero.status_code == 422 and "zero" in zero.text
    bogus = httpx.get(url, params=refund | secret | {"kind": "bonus"})
    assert bogus.status_code == 422 and "refund, chargeback, correction" in bogus.text
    assert httpx.get(url, params=refund | {"secret": "wrong"}).status_code == 401
    negative = httpx.get(
        f"{edge.url}/postbacks/acme/conversion", params=purchase | secret | {"amount": "-80"}
    )
    assert (
        negative.status_code == 422 and "adjustments" in negative.text
    )  # never a negative purchase

    pipeline.drain()
    kept = pipeline.query.rows(
        "SELECT adjustment_id, kind, toString(amount) AS amount FROM conversion_adjustments FINAL "
        "WHERE account = 'acme' AND order_id = {o:String} ORDER BY adjustment_id",
        {"o": order},
    )
    assert [(r["adjustment_id"], r["kind"], Decimal(r["amount"])) for r in kept] == [
        (f"corr-{order}", "correction", Decimal("5")),
        (f"rf-{order}", "refund", Decimal("-30")),
    ]
    money = pipeline.query.rows(
        "SELECT model, toString(sum(attributed_revenue)) AS revenue, "
        "toString(sum(attributed_adjustments)) AS adjustments, "
        "toString(sum(attributed_conversions)) AS conversions FROM attributed_revenue "
        "WHERE account = 'acme' AND campaign = {c:String} AND currency = 'USD' GROUP BY model",
        {"c": campaign},
    )
    assert {
        r["model"]: (Decimal(r["revenue"]), Decimal(r["adjustments"]), Decimal(r["conversions"]))
        for r in money
    } == {model: (Decimal("55"), Decimal("-25"), Decimal("1")) for model in MODELS}
    stray_rows = pipeline.query.rows(
        "SELECT order_id, toString(amount) AS amount, reason FROM unattributable_adjustments "
        "WHERE account = 'acme' AND order_id IN ({o:String}, {n:String})",
        {"o": order, "n": nobody},
    )
    assert [(r["order_id"], Decimal(r["amount"])) for r in stray_rows] == [(nobody, Decimal("-10"))]
    assert stray_rows[0]["reason"]
    assert funnel_revenue() == (Decimal("55"), Decimal("55"))  # the funnel's revenue is net too


def test_each_edge_service_exports_only_its_own_metrics(edge: Edge, python_redirector: str) -> None:
    """An alert on the redirector must not fire against ingest: the ingest service's /metrics
    has no redirector metric and the redirectors' (compiled and Python) no ingest metric."""

    def families(url: str) -> set[str]:
        text = httpx.get(url, timeout=10).text
        return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}

    ingest = families(f"{edge.url}/metrics/")
    assert {"smsfunnel_ingest_requests_total", "smsfunnel_ingest_adjustments_total"} <= ingest
    assert not {f for f in ingest if f.startswith("smsfunnel_redirector_")}
    for url in (edge.redirector_url, python_redirector):
        mine = families(f"{url}/metrics")
        assert "smsfunnel_redirector_clicks_total" in mine, url
        assert not {f for f in mine if f.startswith("smsfunnel_ingest_")}, url


def test_promo_code_conversions_through_the_receivers(edge: Edge, pipeline: Pipeline) -> None:
    """In-store and phone sales: a code issued with a send is that message's conversion (funnel
    and attribution); a campaign-wide code with the buyer's phone is the subscriber's, credited
    to their click; codes are unique per account (409 for another target, 200 for the same);
    a campaign code without a phone and a code never issued are kept as unattributable."""
    tag = str(time.time_ns())
    campaign, code, wide = f"promo-{tag}", f"SHOP-{tag}", f"WIDE-{tag}"
    message_id = str(uuid.uuid4())
    bearer = {"Authorization": "Bearer acme-api-key"}
    send = {
        "message_id": message_id,
        "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "campaign": campaign,
        "sender": "12345",
        "to": "+14155550177",
        "promo_code": code,
    }
    sends = f"{edge.url}/v1/accounts/acme/sends"
    assert httpx.post(sends, json={"sends": [send]}, headers=bearer).status_code == 202
    assert httpx.post(sends, json={"sends": [send]}, headers=bearer).status_code == 202  # a retry
    other = send | {"message_id": str(uuid.uuid4())}
    taken = httpx.post(sends, json={"sends": [other]}, headers=bearer)
    assert taken.status_code == 409 and "sends.0.promo_code" in taken.text
    codes = f"{edge.url}/v1/accounts/acme/codes"
    first = httpx.post(codes, json={"code": wide.lower(), "campaign": campaign}, headers=bearer)
    assert first.status_code == 201 and first.json()["code"] == wide
    assert (
        httpx.post(codes, json={"code": wide, "campaign": campaign}, headers=bearer).status_code
        == 200
    )
    assert (
        httpx.post(codes, json={"code": wide, "campaign": "other"}, headers=bearer).status_code
        == 409
    )
    assert httpx.post(codes, json={"code": wide, "campaign": campaign}).status_code == 401

    human_click(edge, register_link(edge, "https://shop.example/"), message_id)

    url = f"{edge.url}/postbacks/acme/conversion"
    secret = {"secret": "acme-postback-secret", "currency": "USD"}
    till = {"promo_code": code.lower(), "order_id": f"o-till-{tag}", "amount": "20.00"}
    phone = {
        "promo_code": wide,
        "phone": "+1 415 555 0177",
        "order_id": f"o-phone-{tag}",
        "amount": "30.00",
    }
    no_phone = {"promo_code": wide, "order_id": f"o-nophone-{tag}", "amount": "7.00"}
    unknown = {"promo_code": f"NOPE-{tag}", "order_id": f"o-nope-{tag}", "amount": "9.00"}
    assert httpx.get(url, params=till | secret).status_code == 204
    assert httpx.get(url, params=phone | secret).status_code == 204
    assert httpx.get(url, params=no_phone | secret).status_code == 202  # kept, not attributed
    assert httpx.get(url, params=unknown | secret).status_code == 202

    pipeline.drain()
    (row,) = pipeline.query.rows(
        "SELECT conversions, toString(revenue['USD']) AS revenue FROM funnel_rows FINAL "
        "WHERE account = 'acme' AND message_id = {m:String}",
        {"m": message_id},
    )
    assert (row["conversions"], Decimal(row["revenue"])) == (1, Decimal("20"))  # the till sale
    money = pipeline.query.rows(
        "SELECT model, toString(sum(attributed_revenue)) AS revenue FROM attributed_revenue "
        "WHERE account = 'acme' AND campaign = {c:String} AND currency = 'USD' GROUP BY model",
        {"c": campaign},
    )
    # both sales credit the subscriber's one touch, the click on the message
    assert {r["model"]: Decimal(r["revenue"]) for r in money} == dict.fromkeys(
        MODELS, Decimal("50")
    )
    kept = pipeline.query.rows(
        "SELECT order_id, reason FROM unattributable_conversions FINAL "
        "WHERE account = 'acme' AND order_id IN ({a:String}, {b:String})",
        {"a": no_phone["order_id"], "b": unknown["order_id"]},
    )
    reasons = {r["order_id"]: r["reason"] for r in kept}
    assert len(kept) == 2 and set(reasons) == {no_phone["order_id"], unknown["order_id"]}
    assert "no phone names the buyer" in reasons[no_phone["order_id"]]
    assert "was not issued for this account" in reasons[unknown["order_id"]]


def test_a_shopify_refund_counts_once_however_often_shopify_sends_it(
    edge: Edge, pipeline: Pipeline
) -> None:
    order = int(time.time_ns() % 10**15)
    body = orjson.dumps(
        {
            "id": order + 1,
            "order_id": order,
            "transactions": [
                {"kind": "refund", "status": "success", "amount": "15.00", "currency": "EUR"}
            ],
        }
    )
    signature = shopify_signature(body)
    url = f"{edge.url}/webhooks/acme/shopify/refunds-create"
    headers = {"X-Shopify-Hmac-Sha256": signature, "Content-Type": "application/json"}
    for _ in range(2):  # the original and Shopify's retry
        assert httpx.post(url, content=body, headers=headers).status_code == 200
    tampered = {**headers, "X-Shopify-Hmac-Sha256": base64.b64encode(b"x" * 32).decode()}
    assert httpx.post(url, content=body, headers=tampered).status_code == 401
    pipeline.drain()
    rows = pipeline.query.rows(
        "SELECT adjustment_id, kind, toString(amount) AS amount, currency "
        "FROM conversion_adjustments FINAL WHERE account = 'acme' AND order_id = {o:String}",
        {"o": str(order)},
    )
    assert [(r["adjustment_id"], r["kind"], Decimal(r["amount"]), r["currency"]) for r in rows] == [
        (f"shopify-refund-{order + 1}", "refund", Decimal("-15"), "EUR")
    ]
