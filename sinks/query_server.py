"""HTTP beside the sink: Prometheus /metrics, and a read-only /query.

The embedded ClickHouse store is locked to the process that opened it, so reports and BI tools
read it through the sink while it writes. Queries run with readonly=1 (ClickHouse refuses any
write) and only on the loopback interface.

POST /query  {"sql": "...", "parameters": {...}}  ->  {"columns": [...], "rows": [[...], ...]}
"""

from __future__ import annotations

import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks import metrics
from smsfunnel.settings import Settings


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def run_query(client: Client, sql: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    result = client.query(sql, parameters=parameters or {}, settings={"readonly": 1})
    return {"columns": list(result.column_names), "rows": [list(r) for r in result.result_rows]}


def make_handler(client: Client, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
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
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

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
                with lock:
                    answer = run_query(client, sql, request.get("parameters"))
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
    server = ThreadingHTTPServer(("127.0.0.1", settings.sink_http_port), make_handler(client, lock))
    threading.Thread(target=server.serve_forever, name="sink-http", daemon=True).start()
    return server
