"""Connecting to ClickHouse by DSN: chdb:///dir (embedded engine) or http(s)://… (a server)."""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client


def connect(dsn: str) -> Client:
    if dsn.startswith("chdb:"):
        path = dsn.split("://", 1)[1] if "://" in dsn else ""
        if path and not path.startswith("memory"):
            Path(path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=dsn)
