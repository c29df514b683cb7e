"""Applies and reverts the versioned migrations, recording them in `smsfunnel_migrations`."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from sinks.migrations.versions import MIGRATIONS, Migration

LEDGER = "smsfunnel_migrations"


def _ensure_ledger(client: Client) -> None:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} (version UInt32, name String, "
        "applied_at DateTime64(6, 'UTC') DEFAULT now64(6), applied Bool) "
        "ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
    )


def applied_versions(client: Client) -> set[int]:
    _ensure_ledger(client)
    rows = client.query(f"SELECT version FROM {LEDGER} FINAL WHERE applied").result_rows
    return {int(r[0]) for r in rows}


def _record(client: Client, migration: Migration, applied: bool) -> None:
    client.insert(
        LEDGER, [[migration.version, migration.name, applied]], ["version", "name", "applied"]
    )


def migrate(client: Client, target: int | None = None) -> list[int]:
    """Bring the schema to `target` (default: latest). Returns the versions applied/reverted."""
    target = MIGRATIONS[-1].version if target is None else target
    done = applied_versions(client)
    changed: list[int] = []
    for migration in MIGRATIONS:
        if migration.version <= target and migration.version not in done:
            for statement in migration.up:
                client.command(statement)
            _record(client, migration, True)
            changed.append(migration.version)
    for migration in reversed(MIGRATIONS):
        if migration.version > target and migration.version in done:
            for statement in migration.down:
                client.command(statement)
            _record(client, migration, False)
            changed.append(migration.version)
    return changed
