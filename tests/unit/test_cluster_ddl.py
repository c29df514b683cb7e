"""The cluster variant of the migrations: every statement parses with ClickHouse's own parser
(the embedded engine's EXPLAIN AST), every table is Replicated with a Distributed twin sharded by
its upsert key, and the single-node setting Replicated tables refuse is gone."""

from __future__ import annotations

from pathlib import Path

from sinks.clickhouse import connect
from sinks.migrations.cluster import SHARDING_KEYS, cluster_ddl


def test_every_statement_parses_and_has_the_cluster_shape(tmp_path: Path) -> None:
    client = connect(f"chdb://{tmp_path / 'ch'}")
    try:
        statements = [s for _, _, group in cluster_ddl("analytics") for s in group]
        for statement in statements:
            client.query(f"EXPLAIN AST {statement}")  # raises on a syntax error
            if statement.startswith("INSERT INTO"):  # runs once, through the Distributed table
                continue
            assert "ON CLUSTER analytics" in statement
            assert "non_replicated_deduplication_window" not in statement
    finally:
        client.close()
    for table, key in SHARDING_KEYS.items():
        local = [s for s in statements if f"CREATE TABLE IF NOT EXISTS {table}_local " in s]
        distributed = [s for s in statements if f"CREATE TABLE IF NOT EXISTS {table} ON " in s]
        assert local and all("ReplicatedReplacingMergeTree(" in s for s in local), table
        assert (
            f"'/clickhouse/tables/{{shard}}/{{database}}/{table}_local', '{{replica}}'" in local[0]
        )
        assert distributed and set(distributed) == {
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER analytics AS {table}_local "
            f"ENGINE = Distributed(analytics, currentDatabase(), {table}_local, {key})"
        }
    # a versioned engine keeps its version column after the replication arguments
    (rows,) = [s for s in statements if "EXISTS funnel_rows_local" in s]
    assert "'{replica}', version)" in rows
