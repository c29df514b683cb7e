"""Migrations run forwards and backwards on the real (embedded) ClickHouse engine."""

from __future__ import annotations

from pathlib import Path

from sinks.clickhouse import connect
from sinks.migrations.runner import applied_versions, migrate
from sinks.migrations.versions import MIGRATIONS


def tables(client) -> set[str]:  # type: ignore[no-untyped-def]
    return {r[0] for r in client.query("SHOW TABLES").result_rows}


def test_migrate_up_down_up(tmp_path: Path) -> None:
    client = connect(f"chdb://{tmp_path / 'ch'}")
    try:
        latest = MIGRATIONS[-1].version
        assert migrate(client) == [m.version for m in MIGRATIONS]
        assert migrate(client) == []  # idempotent
        assert {"funnel_rows", "funnel_hourly", "dead_letters"} <= tables(client)
        assert applied_versions(client) == {m.version for m in MIGRATIONS}
        assert migrate(client, target=0) == [m.version for m in reversed(MIGRATIONS)]
        assert not {"funnel_rows", "funnel_hourly", "dead_letters"} & tables(client)
        assert migrate(client) and applied_versions(client) == set(range(1, latest + 1))
    finally:
        client.close()
