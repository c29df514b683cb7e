"""The receivers: every HTTP endpoint through which events enter smsfunnel (except clicks, which
the redirector takes). Each one authenticates its account the way that sender signs, turns the
request into schema-validated events (phone numbers hashed here), and answers 2xx only after
Kafka acknowledged them, 503 while Kafka is unavailable, and a 4xx naming the problem for bad
input. `/metrics` for Prometheus, `/openapi.json` and `/docs` for people.
"""

from __future__ import annotations

import asyncio
import secrets as token_source
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import make_asgi_app
from pydantic import ValidationError
from starlette.datastructures import FormData

from producers.acked_producer import AckedProducer, KafkaUnavailable
from producers.compacted_table import CompactedTable, LocalTable, promo_code_registry
from producers.conversions import (
    Unattributable,
    adjustment_from_postback,
    adjustment_from_shopify_refund,
    from_everflow_postback,
    from_generic_postback,
    from_shopify_order,
    from_tune_postback,
)
from producers.event_ids import derived_event_id
from producers.inbound_sms import inbound_event
from producers.metrics import (
    ACK_SECONDS,
    ADJUSTMENTS,
    EVENTS_PUBLISHED,
    KAFKA_UNAVAILABLE,
    REJECTED,
    REQUESTS,
    UNATTRIBUTABLE,
)
from producers.receipts.callbacks import (
    BadCallback,
    from_jasmin_dlr,
    from_kannel_dlr,
    from_twilio_status_callback,
    from_vonage_receipt,
    receipt_event,
)
from producers.receivers import auth
from producers.receivers.models import (
    BatchAccepted,
    CodeRegistered,
    CodeRequest,
    GenericInbound,
    GenericReceipt,
    LinkCreated,
    LinkRequest,
    SendBatch,
    SendRequest,
    VonageReceipt,
)
from producers.tracking_links import InvalidToken, tracking_url, verify_click_id
from schemas.adjustment import ConversionAdjustment
from schemas.delivery_status import from_generic
from schemas.events import (
    EngagementEvent,
    EventBase,
    LandingEvent,
    SendEvent,
    event_to_json,
    validation_problem,
)
from schemas.links import LinkRegistration
from schemas.privacy import InvalidPhoneNumber, hash_phone, timezone_of
from schemas.promo_codes import PromoCode, normalise_code
from schemas.topics import (
    CONVERSION_ADJUSTMENTS,
    LINKS,
    PROMO_CODES,
    TOPIC_FOR_EVENT_TYPE,
    UNATTRIBUTABLE_CONVERSIONS,
    record_key,
)
from schemas.unattributable import UnattributableConversion
from smsfunnel.settings import AccountSecrets, Settings

_bearer = HTTPBearer(auto_error=False, description="the account's api key")
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def _bad(message: str) -> HTTPException:
    return HTTPException(422, message)


KEPT_UNATTRIBUTABLE: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "authenticated, but the click id does not verify for this account: "
        "kept as unattributable (schemas/unattributable.py), not attributed"
    }
}


def create_app(
    settings: Settings,
    producer: AckedProducer | None = None,
    codes: CompactedTable[PromoCode] | LocalTable[PromoCode] | None = None,
) -> FastAPI:
    link_key = settings.link_signing_key.get_secret_value().encode()
    phone_key = settings.phone_hash_key.get_secret_value().encode()
    gateway_zone = ZoneInfo(settings.gateway_timezone)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = producer is None
        app.state.producer = producer or AckedProducer(
            settings.bootstrap_servers(), settings.ingest_ack_timeout
        )
        if codes is not None:
            app.state.codes = codes
        elif own:  # the promo codes issued so far, then followed
            app.state.codes = promo_code_registry(settings.bootstrap_servers())
            await asyncio.to_thread(app.state.codes.start)
        else:  # an app under test with its own producer: only the codes it registers
            app.state.codes = LocalTable()
        yield
        if own:
            app.state.producer.close()
            if codes is None:
                app.state.codes.close()

    app = FastAPI(
        title="smsfunnel ingest edge",
        version="1",
        lifespan=lifespan,
        description="Delivery receipts, inbound SMS, conversion postbacks, shop webhooks, "
        "landing beacons and the send API. 2xx means Kafka acknowledged; 503 means retry.",
    )
    app.mount("/metrics", make_asgi_app())

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        route = _route(request)
        REQUESTS.labels(route, str(response.status_code)).inc()
        if response.status_code in (401, 403):
            REJECTED.labels(route, "auth").inc()
        elif 400 <= response.status_code < 500:
            REJECTED.labels(route, "invalid").inc()
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(KafkaUnavailable)
    async def kafka_unavailable(request: Request, exc: KafkaUnavailable) -> JSONResponse:
        KAFKA_UNAVAILABLE.labels(_route(request)).inc()
        return JSONResponse(
            {"detail": f"Kafka unavailable, retry later: {exc}"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def publish(request: Request, *events: EventBase) -> None:
        records = [
            (TOPIC_FOR_EVENT_TYPE[e.event_type].name, record_key(e), event_to_json(e))  # type: ignore[attr-defined]
            for e in events
        ]
        with ACK_SECONDS.time():
            await request.app.state.producer.send_all(records)
        for e in events:
            EVENTS_PUBLISHED.labels(e.event_type).inc()  # type: ignore[attr-defined]

    def convert(build):  # type: ignore[no-untyped-def]
        """Run a pure mapper; its complaints become a 422 naming the field."""
        try:
            return build()
        except Unattributable:
            raise  # not a complaint: publish_conversion keeps it
        except BadCallback as exc:
            raise _bad(str(exc)) from None
        except InvalidPhoneNumber as exc:
            raise _bad(f"the phone number {exc}") from None
        except ValidationError as exc:
            raise _bad(validation_problem(exc)) from None

    async def publish_conversion(request: Request, build, request_fields: dict[str, str]) -> bool:  # type: ignore[no-untyped-def]
        """Publish the conversion `build` makes; False when it was unattributable and was kept
        instead (DOMAIN.md: never dropped, never refused once authenticated). The answer stays
        2xx either way, so that a network or shop does not retry for ever what can never
        verify; a retry repeats the record's event id and replaces its own row."""
        try:
            conversion = convert(build)
        except Unattributable as exc:
            payload = {k: v for k, v in request_fields.items() if k != "secret"}
            kept = UnattributableConversion(
                **exc.fields,  # type: ignore[arg-type]
                received_at=now(),
                payload=orjson.dumps(payload).decode(),
            )
            await request.app.state.producer.send_all(
                [(UNATTRIBUTABLE_CONVERSIONS.name, kept.account.encode(), kept.to_json())]
            )
            UNATTRIBUTABLE.labels(kept.source).inc()
            return False
        await publish(request, conversion)
        return True

    def secrets_of(account: str) -> AccountSecrets:
        return auth.account_secrets(settings, account)

    def bearer_account(
        account: str, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> str:
        header = f"Bearer {credentials.credentials}" if credentials else None
        auth.check_bearer(secrets_of(account), header)
        return account

    def signed_url(request: Request) -> str:
        if settings.ingest_public_url:
            url = settings.ingest_public_url.rstrip("/") + request.url.path
            return f"{url}?{request.url.query}" if request.url.query else url
        return str(request.url)

    def now() -> datetime:
        return datetime.now(UTC)

    async def form_params(request: Request) -> tuple[FormData, dict[str, str]]:
        form = await request.form()
        return form, {k: str(v) for k, v in form.items()}

    # ---- health ---------------------------------------------------------------------------

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # ---- send API and links ---------------------------------------------------------------

    def send_event(account: str, req: SendRequest) -> SendEvent:
        zone = req.recipient_timezone
        if req.to is not None:
            # national formats ("(415) 555-2671") read in the country the request names
            recipient_hash, country = hash_phone(req.to, phone_key, req.country)
            zone = zone or timezone_of(req.to, req.country)
        else:
            recipient_hash, country = req.recipient_hash or "", req.country or ""
        return SendEvent(
            event_id=req.event_id or derived_event_id(account, "send", req.message_id),
            account=account,
            occurred_at=req.occurred_at,
            message_id=req.message_id,
            campaign=req.campaign,
            variant=req.variant,
            segment=req.segment,
            sender=req.sender,
            recipient_hash=recipient_hash,
            country=country,
            carrier=req.carrier,
            parts=req.parts,
            cost=req.cost,
            currency=req.currency,
            provider=req.provider,
            provider_message_ids=tuple(req.provider_message_ids),
            attribution_window_hours=req.attribution_window_hours,
            recipient_timezone=zone,
        )

    def new_codes(request: Request, wanted: list[PromoCode], where: list[str]) -> list[PromoCode]:
        """Those of `wanted` not registered yet; 409 when a code is already another target's
        (codes are unique per account)."""
        fresh: dict[str, PromoCode] = {}
        for code, name in zip(wanted, where, strict=True):
            known = fresh.get(code.key) or request.app.state.codes.get(code.key)
            if known is not None and not known.same_target(code):
                target = (
                    f"message {known.message_id}"
                    if known.message_id
                    else f"campaign {known.campaign}"
                )
                raise HTTPException(409, f"{name}: code {code.code} is already issued for {target}")
            if known is None:
                fresh[code.key] = code
        return list(fresh.values())

    async def register_codes(request: Request, codes: list[PromoCode]) -> None:
        if not codes:
            return
        await request.app.state.producer.send_all(
            [(PROMO_CODES.name, c.key.encode(), c.to_json()) for c in codes]
        )
        for c in codes:  # known here at once; other processes learn it from the topic
            request.app.state.codes.put(c.key, c)

    @app.post(
        "/v1/accounts/{account}/codes",
        status_code=201,
        tags=["send API"],
        responses={200: {"description": "already issued for the same target"}, 409: {}},
    )
    async def post_code(
        request: Request,
        body: CodeRequest,
        response: Response,
        account: str = Depends(bearer_account),
    ) -> CodeRegistered:
        """Issue a promo code for one message or a whole campaign. A conversion postback with
        `promo_code` instead of `click_id` is then that message's conversion, or (campaign-wide,
        with the buyer's `phone`) the subscriber's."""
        code = PromoCode(
            account=account,
            code=normalise_code(body.code),
            message_id=body.message_id or "",
            campaign=body.campaign or "",
            registered_at=now(),
        )
        fresh = new_codes(request, [code], ["code"])
        await register_codes(request, fresh)
        if not fresh:
            response.status_code = 200
        return CodeRegistered(code=code.code, message_id=code.message_id, campaign=code.campaign)

    @app.post("/v1/accounts/{account}/sends", status_code=202, tags=["send API"])
    async def post_sends(
        request: Request, batch: SendBatch, account: str = Depends(bearer_account)
    ) -> BatchAccepted:
        """Send events, up to 1,000 per call; all or none are accepted."""
        events = []
        for i, req in enumerate(batch.sends):
            try:
                events.append(convert(lambda req=req: send_event(account, req)))
            except HTTPException as exc:
                raise _bad(f"sends.{i}: {exc.detail}") from None
        with_codes = [(i, req) for i, req in enumerate(batch.sends) if req.promo_code]
        codes = new_codes(
            request,
            [
                PromoCode(
                    account=account,
                    code=normalise_code(req.promo_code or ""),
                    message_id=req.message_id,
                    registered_at=now(),
                )
                for _, req in with_codes
            ],
            [f"sends.{i}.promo_code" for i, _ in with_codes],
        )
        await register_codes(request, codes)  # first: a send names a code that exists
        await publish(request, *events)
        return BatchAccepted(accepted=len(events))

    @app.post("/v1/accounts/{account}/links", status_code=201, tags=["send API"])
    async def post_link(
        request: Request, link: LinkRequest, account: str = Depends(bearer_account)
    ) -> LinkCreated:
        """Register a destination; put `<redirector>/<token>` in each message (the Python API:
        producers.tracking_links.tracking_url)."""
        registration = LinkRegistration(
            link_id=token_source.token_urlsafe(6),
            account=account,
            destination=link.destination,
            expires_at=link.expires_at,
            registered_at=now(),
        )
        await request.app.state.producer.send_all(
            [(LINKS.name, registration.link_id.encode(), registration.to_json())]
        )
        return LinkCreated(
            link_id=registration.link_id,
            destination=str(registration.destination),
            example_url=tracking_url(
                settings.redirector_base_url, link_key, account, registration.link_id, "example"
            ),
        )

    # ---- landing beacons (browsers; the click id is signed for the account) ----------------

    def claims_of(account: str, click_id: str):  # type: ignore[no-untyped-def]
        try:
            return verify_click_id(link_key, account, click_id)
        except InvalidToken as exc:
            raise HTTPException(404, f"unknown click id ({exc})") from None

    @app.get("/v1/accounts/{account}/beacon/landing", status_code=204, tags=["beacons"])
    async def landing_beacon(
        request: Request, account: str, smsclid: str = Query(min_length=1, max_length=400)
    ) -> Response:
        """The landing page loaded. One landing per click: reloads are repeats."""
        claims = claims_of(account, smsclid)
        event = LandingEvent(
            event_id=derived_event_id(account, "landing", smsclid),
            account=account,
            occurred_at=now(),
            message_id=claims.message_id,
            click_id=smsclid,
        )
        await publish(request, event)
        return Response(status_code=204, headers={"Access-Control-Allow-Origin": "*"})

    @app.get("/v1/accounts/{account}/beacon/engagement", status_code=204, tags=["beacons"])
    async def engagement_beacon(
        request: Request,
        account: str,
        smsclid: str = Query(min_length=1, max_length=400),
        name: str = Query(min_length=1, max_length=100, pattern=r"^\S+$"),
    ) -> Response:
        """Add-to-cart, form fill… One per click and name."""
        claims = claims_of(account, smsclid)
        event = EngagementEvent(
            event_id=derived_event_id(account, "engagement", smsclid, name),
            account=account,
            occurred_at=now(),
            message_id=claims.message_id,
            click_id=smsclid,
            name=name,
        )
        await publish(request, event)
        return Response(status_code=204, headers={"Access-Control-Allow-Origin": "*"})

    # ---- delivery receipts ----------------------------------------------------------------

    @app.post("/webhooks/{account}/twilio/status", tags=["delivery receipts"])
    async def twilio_status(
        request: Request,
        account: str,
        message_id: str | None = Query(None, description="ours, if the callback URL carries it"),
        x_twilio_signature: str | None = Header(None),
        x_twilio_webhooks_signature_settings: str | None = Header(None),
    ) -> Response:
        """Twilio status callback (form POST), signed with X-Twilio-Signature."""
        multi, params = await form_params(request)
        auth.check_twilio_signature(
            secrets_of(account),
            signed_url(request),
            multi,
            x_twilio_signature,
            x_twilio_webhooks_signature_settings,
        )
        event = convert(lambda: from_twilio_status_callback(account, params, message_id, now()))
        await publish(request, event)
        return Response(status_code=204)

    @app.get("/webhooks/{account}/vonage/receipt", tags=["delivery receipts"])
    async def vonage_receipt_get(
        request: Request,
        account: str,
        messageId: str = Query(min_length=1, max_length=200),
        status: str = Query(min_length=1, max_length=40),
        token: str | None = Query(None, description="the account's webhook token"),
    ) -> Response:
        """Vonage SMS API delivery receipt as a GET."""
        auth.check_webhook_token(secrets_of(account), token)
        params = dict(request.query_params)
        event = convert(lambda: from_vonage_receipt(account, params, now()))
        await publish(request, event)
        return Response(status_code=204)

    @app.post("/webhooks/{account}/vonage/receipt", tags=["delivery receipts"])
    async def vonage_receipt_post(
        request: Request,
        account: str,
        receipt: VonageReceipt,
        token: str | None = Query(None, description="the account's webhook token"),
    ) -> Response:
        """Vonage SMS API delivery receipt as JSON."""
        auth.check_webhook_token(secrets_of(account), token)
        params = {k: str(v) for k, v in receipt.model_dump(by_alias=True).items() if v is not None}
        event = convert(lambda: from_vonage_receipt(account, params, now()))
        await publish(request, event)
        return Response(status_code=204)

    async def jasmin(
        request: Request,
        account: str,
        params: Mapping[str, str],
        message_id: str | None,
        token: str | None,
    ) -> PlainTextResponse:
        auth.check_webhook_token(secrets_of(account), token)
        event = convert(lambda: from_jasmin_dlr(account, params, message_id, gateway_zone, now()))
        await publish(request, event)
        # Jasmin retries unless the body is exactly this
        return PlainTextResponse("ACK/Jasmin")

    @app.get("/webhooks/{account}/jasmin/dlr", tags=["delivery receipts"])
    async def jasmin_dlr_get(
        request: Request,
        account: str,
        id: str = Query(min_length=1, max_length=200),
        message_status: str = Query(min_length=1, max_length=40),
        message_id: str | None = Query(None, description="ours, if the dlr-url carries it"),
        token: str | None = Query(None),
    ) -> PlainTextResponse:
        """Jasmin's dlr-url (GET). Answers `ACK/Jasmin`."""
        return await jasmin(request, account, dict(request.query_params), message_id, token)

    @app.post("/webhooks/{account}/jasmin/dlr", tags=["delivery receipts"])
    async def jasmin_dlr_post(
        request: Request,
        account: str,
        message_id: str | None = Query(None, description="ours, if the dlr-url carries it"),
        token: str | None = Query(None),
    ) -> PlainTextResponse:
        """Jasmin's dlr-url (form POST: id, message_status, level, donedate, err…)."""
        _, params = await form_params(request)
        return await jasmin(request, account, params, message_id, token)

    @app.get("/webhooks/{account}/kannel/dlr", tags=["delivery receipts"])
    async def kannel_dlr(
        request: Request,
        account: str,
        message_id: str = Query(min_length=1, max_length=200),
        type: str = Query(min_length=1, max_length=4, description="Kannel's %d"),
        smsc_id: str | None = Query(None, description="Kannel's %F"),
        receipt: str | None = Query(None, description="Kannel's %A (SMPP receipt text)"),
        ts: str | None = Query(None, description="Kannel's %T"),
        token: str | None = Query(None),
    ) -> Response:
        """Kannel's dlr-url, e.g.
        `…/kannel/dlr?message_id=<ours>&type=%d&smsc_id=%F&receipt=%A&ts=%T&token=…`."""
        auth.check_webhook_token(secrets_of(account), token)
        params = dict(request.query_params)
        event = convert(lambda: from_kannel_dlr(account, params, gateway_zone, now()))
        await publish(request, event)
        return Response(status_code=204)

    @app.post("/webhooks/{account}/receipts", status_code=204, tags=["delivery receipts"])
    async def generic_receipt(
        request: Request, body: GenericReceipt, account: str = Depends(bearer_account)
    ) -> Response:
        """A delivery receipt from any other sender (JSON)."""
        status, cause = from_generic(body.status)
        provider_id = body.provider_message_id or body.message_id or ""
        event = convert(
            lambda: receipt_event(
                account=account,
                source=f"receipt:{body.provider}",
                provider=body.provider,
                provider_message_id=provider_id,
                message_id=body.message_id,
                status=status,
                cause=cause,
                error_code=body.error_code,
                occurred_at=body.occurred_at,
                natural_key=(body.event_id,)
                if body.event_id
                else (provider_id, body.status.lower(), body.occurred_at.isoformat()),
            )
        )
        await publish(request, event)
        return Response(status_code=204)

    # ---- inbound SMS ----------------------------------------------------------------------

    @app.post("/webhooks/{account}/twilio/inbound", tags=["inbound SMS"])
    async def twilio_inbound(
        request: Request,
        account: str,
        x_twilio_signature: str | None = Header(None),
        x_twilio_webhooks_signature_settings: str | None = Header(None),
    ) -> Response:
        """Twilio's incoming-message webhook (form POST: From, To, Body, MessageSid,
        OptOutType). Answers empty TwiML: replies are the sender's business."""
        multi, params = await form_params(request)
        auth.check_twilio_signature(
            secrets_of(account),
            signed_url(request),
            multi,
            x_twilio_signature,
            x_twilio_webhooks_signature_settings,
        )
        for name in ("MessageSid", "From", "To"):
            if not params.get(name):
                raise _bad(f"missing parameter {name!r}")
        event = convert(
            lambda: inbound_event(
                account=account,
                source="twilio-inbound",
                provider_id=params["MessageSid"],
                from_number=params["From"],
                to_sender=params["To"],
                body=params.get("Body", ""),
                occurred_at=now(),
                phone_key=phone_key,
                provider_kind=params.get("OptOutType", ""),
            )
        )
        await publish(request, event)
        return Response(TWIML_EMPTY, media_type="text/xml")

    @app.post("/webhooks/{account}/inbound", status_code=204, tags=["inbound SMS"])
    async def generic_inbound(
        request: Request, body: GenericInbound, account: str = Depends(bearer_account)
    ) -> Response:
        """An inbound SMS from any other provider (JSON)."""
        event = convert(
            lambda: inbound_event(
                account=account,
                source="inbound",
                provider_id=body.id,
                from_number=body.from_number,
                to_sender=body.to,
                body=body.body,
                occurred_at=body.occurred_at,
                phone_key=phone_key,
            )
        )
        await publish(request, event)
        return Response(status_code=204)

    # ---- conversions ----------------------------------------------------------------------

    async def query_and_body(request: Request) -> tuple[dict[str, str], bytes]:
        raw = await request.body()
        params = dict(request.query_params)
        if request.method == "POST":
            _, form = await form_params(request)
            params.update(form)
        return params, raw

    async def generic_postback(
        request: Request,
        account: str,
        click_id: str | None = Query(None, max_length=400),
        order_id: str | None = Query(None, max_length=200),
        amount: str | None = Query(None, max_length=40),
        currency: str | None = Query(None, max_length=3),
        event: str | None = Query(None, max_length=200),
        occurred_at: str | None = Query(
            None,
            max_length=40,
            description="when the conversion happened, ISO 8601 with a timezone "
            "(default: when the postback arrives)",
        ),
        promo_code: str | None = Query(
            None,
            max_length=64,
            description="instead of click_id: a code issued through the send API",
        ),
        phone: str | None = Query(
            None,
            max_length=40,
            description="the buyer's number, for a campaign-wide promo code (hashed here, "
            "never stored)",
        ),
        secret: str | None = Query(None),
        x_smsfunnel_signature: str | None = Header(None),
    ) -> Response:
        """Server-to-server conversion: click_id (or promo_code[, phone]), order_id, amount,
        currency[, event, occurred_at]. GET with `secret`, or POST (form) with `secret` or an
        X-Smsfunnel-Signature of the body."""
        params, raw = await query_and_body(request)
        auth.check_postback(secrets_of(account), params.get("secret"), raw, x_smsfunnel_signature)
        codes = request.app.state.codes
        build = lambda: from_generic_postback(  # noqa: E731
            account, params, link_key, now(), codes.get, phone_key
        )
        attributed = await publish_conversion(request, build, params)
        return Response(status_code=204 if attributed else 202)

    for method in ("GET", "POST"):
        app.add_api_route(
            "/postbacks/{account}/conversion",
            generic_postback,
            methods=[method],
            tags=["conversions"],
            operation_id=f"generic_postback_{method.lower()}",
            status_code=204,
            responses=KEPT_UNATTRIBUTABLE,
        )

    async def publish_adjustment(request: Request, adjustment: ConversionAdjustment) -> None:
        await request.app.state.producer.send_all(
            [(CONVERSION_ADJUSTMENTS.name, adjustment.account.encode(), adjustment.to_json())]
        )
        ADJUSTMENTS.labels(adjustment.kind.value).inc()

    async def adjustment_postback(
        request: Request,
        account: str,
        order_id: str | None = Query(None, max_length=200),
        adjustment_id: str | None = Query(
            None,
            max_length=200,
            description="the refund's or correction's own id: a resend counts once",
        ),
        amount: str | None = Query(
            None,
            max_length=40,
            description="refunds and chargebacks take money back whatever its sign",
        ),
        currency: str | None = Query(None, max_length=3),
        kind: str | None = Query(
            None, max_length=20, description="refund (default), chargeback or correction"
        ),
        occurred_at: str | None = Query(
            None, max_length=40, description="ISO 8601 with a timezone (default: on arrival)"
        ),
        secret: str | None = Query(None),
        x_smsfunnel_signature: str | None = Header(None),
    ) -> Response:
        """A refund, chargeback or payout correction of a conversion, by its order id: a signed
        adjustment, never a negative purchase. Authenticated like the conversion postback. An
        order no conversion has is kept too (the view unattributable_adjustments lists it)."""
        params, raw = await query_and_body(request)
        auth.check_postback(secrets_of(account), params.get("secret"), raw, x_smsfunnel_signature)
        adjustment = convert(lambda: adjustment_from_postback(account, params, now()))
        await publish_adjustment(request, adjustment)
        return Response(status_code=204)

    for method in ("GET", "POST"):
        app.add_api_route(
            "/postbacks/{account}/adjustment",
            adjustment_postback,
            methods=[method],
            tags=["conversions"],
            operation_id=f"adjustment_postback_{method.lower()}",
            status_code=204,
        )

    @app.get(
        "/postbacks/{account}/everflow",
        tags=["conversions"],
        status_code=204,
        responses=KEPT_UNATTRIBUTABLE,
    )
    async def everflow_postback(
        request: Request,
        account: str,
        transaction_id: str = Query(min_length=1, max_length=400),
        amount: str | None = Query(None, max_length=40),
        order_id: str | None = Query(None, max_length=200),
        secret: str | None = Query(None),
    ) -> Response:
        """Everflow macro URL:
        `?transaction_id={transaction_id}&amount={sale_amount}&order_id={order_id}&secret=…`."""
        auth.check_postback(secrets_of(account), secret, b"", None)
        params = dict(request.query_params)
        build = lambda: from_everflow_postback(account, params, link_key, now())  # noqa: E731
        attributed = await publish_conversion(request, build, params)
        return Response(status_code=204 if attributed else 202)

    @app.get("/postbacks/{account}/tune", tags=["conversions"])
    async def tune_postback(
        request: Request,
        account: str,
        transaction_id: str = Query(min_length=1, max_length=400),
        amount: str | None = Query(None, max_length=40),
        adv_sub: str | None = Query(None, max_length=200),
        secret: str | None = Query(None),
    ) -> PlainTextResponse:
        """TUNE `aff_lsr`-style postback; answers `success=true;`."""
        auth.check_postback(secrets_of(account), secret, b"", None)
        params = dict(request.query_params)
        build = lambda: from_tune_postback(account, params, link_key, now())  # noqa: E731
        await publish_conversion(request, build, params)  # TUNE knows one answer: received
        return PlainTextResponse("success=true;")

    @app.post("/webhooks/{account}/shopify/orders-paid", tags=["conversions"])
    async def shopify_orders_paid(
        request: Request,
        account: str,
        x_shopify_hmac_sha256: str | None = Header(None),
        x_shopify_event_id: str | None = Header(None),
    ) -> Response:
        """Shopify `orders/paid` webhook, verified by X-Shopify-Hmac-Sha256 over the raw body;
        X-Shopify-Event-Id makes Shopify's retries repeats."""
        raw = await request.body()
        auth.check_shopify_hmac(secrets_of(account), raw, x_shopify_hmac_sha256)
        if not x_shopify_event_id:
            raise _bad("missing X-Shopify-Event-Id")
        build = lambda: from_shopify_order(  # noqa: E731
            account, raw, x_shopify_event_id, link_key, phone_key, now()
        )
        fields = {"X-Shopify-Event-Id": x_shopify_event_id, "body": raw.decode("utf-8", "replace")}
        await publish_conversion(request, build, fields)
        return Response(status_code=200)

    @app.post("/webhooks/{account}/shopify/refunds-create", tags=["conversions"])
    async def shopify_refunds_create(
        request: Request,
        account: str,
        x_shopify_hmac_sha256: str | None = Header(None),
    ) -> Response:
        """Shopify `refunds/create` webhook, verified like orders/paid: the refund's successful
        transactions become one negative adjustment of its order (kept once per refund id)."""
        raw = await request.body()
        auth.check_shopify_hmac(secrets_of(account), raw, x_shopify_hmac_sha256)
        adjustment = convert(lambda: adjustment_from_shopify_refund(account, raw, now()))
        await publish_adjustment(request, adjustment)
        return Response(status_code=200)

    return app
