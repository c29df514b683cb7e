"""Reading ClickHouse from outside the sink: directly by DSN, or through a running sink's
read-only /query when the embedded store is locked by that sink."""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from typing import Any, Protocol

import orjson


class QueryError(RuntimeError):
    pass


class QueryClient(Protocol):
    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


class ClientQuery:
    """Read-only queries on a clickhouse-connect client, under `lock` when one is given (the
    sink's, which its writes and /query take: a client runs one query at a time)."""

    def __init__(self, client: Any, lock: threading.Lock | None = None) -> None:
        self.client = client
        self.lock = lock or contextlib.nullcontext()

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.lock:
            columns, rows = self._query(sql, parameters)
        return [dict(zip(columns, r, strict=True)) for r in rows]

    def _query(self, sql: str, parameters: dict[str, Any] | None) -> tuple[Any, Any]:
        result = self.client.query(sql, parameters=parameters or {}, settings={"readonly": 1})
        return result.column_names, result.result_rows

    def close(self) -> None:
        self.client.close()


class DirectQuery(ClientQuery):
    def __init__(self, dsn: str) -> None:
        from sinks.clickhouse import connect

        super().__init__(connect(dsn))


class SinkQuery:
    """Through a running sink. With an account and its api key, every query is scoped to it."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 60.0,
        account: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/query"
        self.timeout = timeout
        self.account = account
        self.api_key = api_key

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        request_body: dict[str, Any] = {"sql": sql, "parameters": parameters or {}}
        headers = {"Content-Type": "application/json"}
        if self.account is not None:
            request_body["account"] = self.account
            headers["Authorization"] = f"Bearer {self.api_key or ''}"
        request = urllib.request.Request(self.url, data=orjson.dumps(request_body), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise QueryError(orjson.loads(exc.read()).get("error", str(exc))) from None
        columns = answer["columns"]
        return [dict(zip(columns, r, strict=True)) for r in answer["rows"]]
