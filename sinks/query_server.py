"""HTTP beside the sink: Prometheus /metrics, and a read-only /query.

The embedded ClickHouse store is locked to the process that opened it, so reports and BI tools
read it through the sink while it writes. Queries run with readonly=1 (ClickHouse refuses any
write) and only on the loopback interface.

POST /query  {"sql": "...", "parameters": {...}[, "account": "acme"]}
             ->  {"columns": [...], "rows": [[...], ...]}

A query that names an account (and proves it with `Authorization: Bearer <the account's api
key>`) is scoped to that account: ClickHouse itself adds `account = '<account>'` to every read of
an account's table, through views, subqueries and joins (the `additional_table_filters` setting),
and the query may read only the account tables and metric views: ClickHouse's own parser
(`EXPLAIN AST`) names every table it reads, and a table function (`merge()`, `remote()`, …),
which would bypass the filter, is refused. With SMSFUNNEL_SINK_QUERY_REQUIRES_ACCOUNT every
query must be scoped.
"""

from __future__ import annotations

import hmac
import re
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from clickhouse_connect.driver.client import Client
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks import metrics
from sinks.query_client import ClientQuery
from sinks.split_recommendation import recommend
from smsfunnel.settings import Settings


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


# What a scoped query may read: every table that has an account column, and the views over them.
ACCOUNT_TABLES = (
    "funnel_rows",
    "funnel_hourly",
    "attribution_credits",
    "message_responses",
    "inbound_events",
    "late_events",
    "unattributable_conversions",
    "conversion_adjustments",
)
METRIC_VIEWS = (
    "campaign_metrics",
    "unattributable_adjustments",
    "failure_causes",
    "attributed_revenue",
    "response_times",
    "variant_comparison",
    "funnel_dropoff",
    "segment_revenue",
    "daily_trends",
    "send_time_heatmap",
    "window_conversions",
    "subscriber_growth",
    "orphan_messages",
    "late_event_summary",
    "variant_revenue_tests",
    "send_time_revenue",
)
# Read through an IN or a JOIN by name they would still be filtered; these have no account.
NO_ACCOUNT_TABLES = ("dead_letters", "schema_migrations")


class QueryRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tables_read(client: Client, sql: str, parameters: dict[str, Any] | None) -> list[str]:
    """Every table expression of the query, as ClickHouse parses it; a table function comes back
    as 'function:<name>'."""
    ast = client.query(f"EXPLAIN AST {sql}", parameters=parameters or {}, settings={"readonly": 1})
    lines = [row[0].strip() for row in ast.result_rows]
    found = []
    for here, after in zip(lines, lines[1:], strict=False):
        if here.startswith("TableExpression"):
            if after.startswith("TableIdentifier "):
                found.append(after.split()[1])
            elif after.startswith("Function "):
                found.append("function:" + after.split()[1])
    return found


def scoped_settings(client: Client, account: str) -> dict[str, Any]:
    database = client.database or "default"
    filters = {f"{database}.{t}": f"account = {_quote(account)}" for t in ACCOUNT_TABLES}
    filters |= {f"{database}.{t}": "0" for t in NO_ACCOUNT_TABLES}
    return {"readonly": 1, "additional_table_filters": filters}


def run_query(
    client: Client, sql: str, parameters: dict[str, Any] | None, account: str | None = None
) -> dict[str, Any]:
    settings: dict[str, Any] = {"readonly": 1}
    if account is not None:
        allowed = set(ACCOUNT_TABLES) | set(METRIC_VIEWS)
        for table in tables_read(client, sql, parameters):
            name = table.removeprefix(f"{client.database or 'default'}.")
            if name not in allowed:
                raise QueryRefused(403, f"a scoped query may read {sorted(allowed)}, not {table!r}")
        settings = scoped_settings(client, account)
    result = client.query(sql, parameters=parameters or {}, settings=settings)
    return {"columns": list(result.column_names), "rows": [list(r) for r in result.result_rows]}


def authorised_account(settings: Settings, account: Any, authorization: str | None) -> str | None:
    """The account a request is scoped to, or None for an unscoped (operator) query."""
    if account is None:
        if settings.sink_query_requires_account:
            raise QueryRefused(401, "name an 'account' and send its api key as a Bearer token")
        return None
    if not isinstance(account, str) or account not in settings.accounts:
        raise QueryRefused(401, f"account {account!r} is not configured")
    expected = settings.accounts[account].api_key.get_secret_value()
    scheme, _, token = (authorization or "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token, expected):
        raise QueryRefused(401, "wrong or missing Bearer api key for this account")
    return account


SPLIT_PATH = re.compile(r"^/v1/accounts/(?P<account>[^/]+)/campaigns/(?P<campaign>[^/]+)/split$")


class ScopedQuery(ClientQuery):
    """Queries of one account through run_query (ClickHouse adds the account filter), under
    the sink's lock: the QueryClient of what the server answers itself."""

    def __init__(self, client: Client, lock: threading.Lock, account: str) -> None:
        super().__init__(client, lock)
        self.account = account

    def _query(self, sql: str, parameters: dict[str, Any] | None) -> tuple[Any, Any]:
        answer = run_query(self.client, sql, parameters, self.account)
        return answer["columns"], answer["rows"]


def make_handler(
    client: Client, lock: threading.Lock, settings: Settings
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/health":
                self._send(200, b'{"ok":true}', "application/json")
            elif match := SPLIT_PATH.match(urlsplit(self.path).path):
                self._split(match)
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _split(self, match: re.Match[str]) -> None:
            """GET /v1/accounts/{a}/campaigns/{c}/split[?model=&currency=]: the traffic split
            for the campaign's next sends, to the account's api key (Bearer) only."""
            account, campaign = unquote(match["account"]), unquote(match["campaign"])
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            try:
                authorised_account(settings, account, self.headers.get("Authorization"))
                scoped = ScopedQuery(client, lock, account)
                answer = recommend(
                    scoped,
                    account,
                    campaign,
                    query.get("model", "last_click"),
                    query.get("currency", "USD"),
                )
            except QueryRefused as exc:
                self._send(exc.status, orjson.dumps({"error": str(exc)}), "application/json")
                return
            except Exception as exc:  # noqa: BLE001 - ClickHouse's message goes back to the caller
                self._send(400, orjson.dumps({"error": str(exc)[:4000]}), "application/json")
                return
            self._send(200, orjson.dumps(answer.to_json_dict()), "application/json")

        def do_POST(self) -> None:
            if self.path != "/query":
                self._send(404, b'{"error":"not found"}', "application/json")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                request = orjson.loads(self.rfile.read(length))
                sql = request["sql"]
                if not isinstance(sql, str):
                    raise TypeError("sql must be a string")
            except (ValueError, KeyError, TypeError) as exc:
                metrics.QUERIES.labels("bad_request").inc()
                body = orjson.dumps({"error": f"expected JSON {{'sql': str}}: {exc}"})
                self._send(400, body, "application/json")
                return
            try:
                account = authorised_account(
                    settings, request.get("account"), self.headers.get("Authorization")
                )
                with lock:
                    answer = run_query(client, sql, request.get("parameters"), account)
            except QueryRefused as exc:
                metrics.QUERIES.labels("refused").inc()
                self._send(exc.status, orjson.dumps({"error": str(exc)}), "application/json")
                return
            except Exception as exc:  # noqa: BLE001 - ClickHouse's message goes back to the caller
                metrics.QUERIES.labels("error").inc()
                self._send(400, orjson.dumps({"error": str(exc)[:4000]}), "application/json")
                return
            metrics.QUERIES.labels("ok").inc()
            self._send(200, orjson.dumps(answer, default=_default), "application/json")

    return Handler


def serve_in_background(
    settings: Settings, client: Client, lock: threading.Lock
) -> ThreadingHTTPServer:
    handler = make_handler(client, lock, settings)
    server = ThreadingHTTPServer(("127.0.0.1", settings.sink_http_port), handler)
    threading.Thread(target=server.serve_forever, name="sink-http", daemon=True).start()
    return server
